//! The optional TOML config file: each key is a `MURMUR_` environment variable in lower case without the
//! prefix (`database_url`, `kafka_brokers`, …). Values are applied as environment variables that are not
//! already set, so flags and the environment override the file. Unknown keys are an error.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::CommandFactory;

use crate::cli::Cli;

pub fn apply(args: &[OsString]) -> anyhow::Result<()> {
    let Some(path) = config_path(args) else { return Ok(()) };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading config file {}", path.display()))?;
    let table: toml::Table = text.parse().with_context(|| format!("parsing config file {}", path.display()))?;
    let known = known_variables();
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
        if std::env::var_os(&variable).is_none() {
            // Called before any thread starts (see main).
            std::env::set_var(&variable, value);
        }
    }
    Ok(())
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

fn known_variables() -> BTreeSet<String> {
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
    walk(&Cli::command(), &mut out);
    out.remove("MURMUR_CONFIG");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_reachable_by_environment() {
        let known = known_variables();
        for name in ["MURMUR_DATABASE_URL", "MURMUR_KAFKA_BROKERS", "MURMUR_INDEX_DIR", "MURMUR_MODEL_DIR"] {
            assert!(known.contains(name), "{name} missing");
        }
    }

    #[test]
    fn file_sets_unset_variables_and_refuses_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("murmur-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let good = dir.join("good.toml");
        std::fs::write(&good, "sink_batch = 17\nkafka_options = [\"a=1\", \"b=2\"]\n").expect("write");
        let args: Vec<OsString> = vec!["murmur".into(), "--config".into(), good.into_os_string()];
        apply(&args).expect("applies");
        assert_eq!(std::env::var("MURMUR_SINK_BATCH").as_deref(), Ok("17"));
        assert_eq!(std::env::var("MURMUR_KAFKA_OPTIONS").as_deref(), Ok("a=1,b=2"));

        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "databse_url = \"typo\"\n").expect("write");
        let args: Vec<OsString> = vec!["murmur".into(), "--config".into(), bad.into_os_string()];
        let err = apply(&args).expect_err("unknown key refused").to_string();
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
