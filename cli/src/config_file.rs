//! The optional TOML config file: each key is a `MURMUR_` environment variable in lower case without the
//! prefix (`database_url`, `kafka_brokers`, …). Values are applied as environment variables that are not
//! already set, so flags and the environment override the file. Unknown keys are an error.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// Sets the variables the file names (`--config` in `args`, else `MURMUR_CONFIG`) that are not set yet; the
/// keys `command` knows are the only ones accepted.
pub fn apply(args: &[OsString], command: &clap::Command) -> anyhow::Result<()> {
    let Some(path) = config_path(args) else { return Ok(()) };
    for (variable, value) in settings(&path, command)? {
        if std::env::var_os(&variable).is_none() {
            // Called before any thread starts (see main).
            std::env::set_var(&variable, value);
        }
    }
    Ok(())
}

/// The file's settings as `MURMUR_*` variables and their values; an unknown key or a value of no supported
/// type is an error naming it.
pub fn settings(path: &Path, command: &clap::Command) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
    let table: toml::Table = text.parse().with_context(|| format!("parsing config file {}", path.display()))?;
    let known = known_variables(command);
    let mut settings = Vec::new();
    for (key, value) in table {
        let variable = format!("MURMUR_{}", key.to_uppercase());
        if !known.contains(&variable) {
            bail!("config file {}: unknown setting {key:?}", path.display());
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned).unwrap_or_else(|| item.to_string()))
                .collect::<Vec<_>>()
                .join(","),
            other => bail!("config file {}: setting {key:?} has unsupported value {other}", path.display()),
        };
        settings.push((variable, value));
    }
    Ok(settings)
}

fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let arg = arg.to_string_lossy();
        if arg == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("MURMUR_CONFIG").map(PathBuf::from)
}

/// Every `MURMUR_*` variable `command` or one of its subcommands reads, but `MURMUR_CONFIG` itself.
pub fn known_variables(command: &clap::Command) -> BTreeSet<String> {
    fn walk(command: &clap::Command, out: &mut BTreeSet<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeSet::new();
    walk(command, &mut out);
    out.remove("MURMUR_CONFIG");
    out
}

/// One setting as the command line defines it, over every command that reads it.
#[derive(Default)]
struct Setting {
    /// Each default value, with the commands that have it.
    defaults: BTreeMap<String, Vec<String>>,
    help: String,
}

/// `docs/configuration.md`: every `MURMUR_*` variable with its commands, defaults and meaning, written from
/// clap's own definitions so that the reference cannot drift from the code (a test compares them).
pub fn reference_markdown(command: &clap::Command) -> String {
    fn walk(command: &clap::Command, path: &str, out: &mut BTreeMap<String, Setting>) {
        for arg in command.get_arguments() {
            let Some(env) = arg.get_env() else { continue };
            let setting = out.entry(env.to_string_lossy().into_owned()).or_default();
            let default: Vec<String> =
                arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
            setting.defaults.entry(default.join(",")).or_default().push(path.to_owned());
            let help = arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default();
            if help.len() > setting.help.len() {
                setting.help = help;
            }
        }
        for sub in command.get_subcommands() {
            let name = sub.get_name();
            walk(sub, &if path.is_empty() { name.to_owned() } else { format!("{path} {name}") }, out);
        }
    }
    let mut settings = BTreeMap::new();
    walk(command, "", &mut settings);
    let cell = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|");
    let mut out = String::from(
        "# Configuration\n\n\
         Every setting of every `murmur` command: a flag (`murmur <command> --help`), a `MURMUR_*` environment\n\
         variable, or a key of the TOML file given with `--config` (the variable in lower case without the prefix;\n\
         see [murmur.example.toml](../murmur.example.toml)). Precedence: flag, environment, file, default.\n\
         Generated from the command line's definitions by `MURMUR_WRITE_DOCS=1 cargo test --release --bin murmur\n\
         configuration_reference`; a test fails when it is stale. Back to the [README](../README.md).\n\n\
         Beside these, `MURMUR_LOG` sets the log filter (`info` by default; e.g. `info,murmur_ingest=debug`), and\n\
         `MURMUR_HOME` the folder relative paths of assets, models and indexes are read from (defaults\n\
         included; the working folder when unset), so murmur can start outside its checkout. `murmur-bench` and\n\
         `murmur-train` read the same variables for the settings they share (models, Kafka, Postgres; see their\n\
         `--help`).\n\n\
         | variable | commands | default | what it does |\n|---|---|---|---|\n",
    );
    for (variable, setting) in &settings {
        let mut commands: Vec<&str> =
            setting.defaults.values().flatten().map(|c| if c.is_empty() { "all" } else { c.as_str() }).collect();
        commands.sort_unstable();
        commands.dedup();
        let default = match setting.defaults.len() {
            1 => {
                setting.defaults.keys().next().map(|d| if d.is_empty() { "none".to_owned() } else { format!("`{d}`") })
            }
            _ => Some(
                setting
                    .defaults
                    .iter()
                    .map(|(d, cs)| format!("`{}` ({})", if d.is_empty() { "none" } else { d }, cs.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        }
        .unwrap_or_default();
        out.push_str(&format!(
            "| `{variable}` | {} | {} | {} |\n",
            cell(&commands.join(", ")),
            cell(&default),
            cell(&setting.help)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command with a subcommand, as murmur's are built.
    fn command() -> clap::Command {
        clap::Command::new("murmur").arg(clap::Arg::new("config").long("config").env("MURMUR_CONFIG")).subcommand(
            clap::Command::new("sink")
                .arg(clap::Arg::new("sink_batch").long("sink-batch").env("MURMUR_SINK_BATCH"))
                .arg(clap::Arg::new("kafka_options").long("kafka-option").env("MURMUR_KAFKA_OPTIONS")),
        )
    }

    #[test]
    fn knows_the_variables_of_every_subcommand_but_the_config_itself() {
        let known = known_variables(&command());
        assert_eq!(known.into_iter().collect::<Vec<_>>(), ["MURMUR_KAFKA_OPTIONS", "MURMUR_SINK_BATCH"]);
    }

    #[test]
    fn file_sets_unset_variables_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "sink_batch = 17\nkafka_options = [\"a=1\", \"b=2\"]\n").expect("write");
        let args: Vec<OsString> = vec!["murmur".into(), "--config".into(), good.into_os_string()];
        apply(&args, &command()).expect("applies");
        assert_eq!(std::env::var("MURMUR_SINK_BATCH").as_deref(), Ok("17"));
        assert_eq!(std::env::var("MURMUR_KAFKA_OPTIONS").as_deref(), Ok("a=1,b=2"));

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "databse_url = \"typo\"\n").expect("write");
        let args: Vec<OsString> = vec!["murmur".into(), "--config".into(), bad.into_os_string()];
        let err = apply(&args, &command()).expect_err("unknown key refused").to_string();
        assert!(err.contains("databse_url"), "{err}");
    }

    #[test]
    fn finds_the_config_flag() {
        let args: Vec<OsString> = ["murmur", "serve", "--config=x.toml"].iter().map(OsString::from).collect();
        assert_eq!(config_path(&args), Some(PathBuf::from("x.toml")));
        let args: Vec<OsString> = ["murmur", "--config", "y.toml", "serve"].iter().map(OsString::from).collect();
        assert_eq!(config_path(&args), Some(PathBuf::from("y.toml")));
    }
}
