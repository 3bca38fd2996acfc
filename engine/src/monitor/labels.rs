//! Label packs from user-given files, in the formats security teams have: Forta labelled
//! datasets and starter-kit lists (CSV/TSV), ScamSniffer (JSON arrays or domain -> addresses),
//! the MEW darklist (JSON objects), CryptoScamDB and GraphSense tag packs (YAML), OFAC lists,
//! or one address per line. Only Ethereum addresses are kept; others are counted.

use std::path::Path;

use anyhow::{Context, Result};
use argus_core::Address;
use argus_risk::onchain::{Label, LabelSet};
use serde::Serialize;
use serde_json::Value;

/// What one file contributed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    pub file: String,
    pub addresses: usize,
    /// Entries that look like addresses of other chains (BTC and the like), skipped.
    pub other_chains: usize,
    /// Rows or cells that should have held an address and did not.
    pub bad: usize,
}

/// Fields whose text names what an address is, in order of preference.
const LABEL_FIELDS: [&str; 9] =
    ["label", "wallet_tag", "etherscan_tag", "contract_tag", "name", "comment", "tag", "threat category", "category"];
/// Mapping keys that are structure, not names (their values inherit the enclosing label).
const STRUCTURAL: [&str; 8] = ["addresses", "address", "tags", "eth", "data", "items", "result", "labels"];

/// Adds every address of `path` to `set`, labelled with the entry's own label (or the file
/// name) and `source` = the file's name with its folder.
///
/// # Errors
/// An unreadable file or one that is not valid CSV/JSON/YAML for its extension.
pub fn load_labels(path: &Path, set: &mut LabelSet) -> Result<LoadReport> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading label pack {}", path.display()))?;
    let source = source_name(path);
    let mut report = LoadReport { file: path.display().to_string(), ..LoadReport::default() };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let mut add = |addr: &str, label: &str, report: &mut LoadReport| match Address::from_hex(addr.trim()) {
        Ok(a) => {
            set.insert(a, Label::classify(label.to_owned(), source.clone()));
            report.addresses += 1;
        }
        Err(_) => {
            if looks_like_other_chain(addr) {
                report.other_chains += 1;
            } else {
                report.bad += 1;
            }
        }
    };
    match ext.as_str() {
        "csv" | "tsv" => {
            let sep = if ext == "tsv" { '\t' } else { ',' };
            let mut lines = text.lines();
            let header: Vec<String> =
                split(lines.next().unwrap_or(""), sep).into_iter().map(|h| h.trim().to_ascii_lowercase()).collect();
            let rows: Vec<Vec<String>> = lines.filter(|l| !l.trim().is_empty()).map(|l| split(l, sep)).collect();
            let mut addr_cols: Vec<usize> = header
                .iter()
                .enumerate()
                .filter(|(_, h)| h.contains("address") || *h == "entity" || *h == "attacker")
                .map(|(i, _)| i)
                .take(1)
                .collect();
            if addr_cols.is_empty() {
                // No named column: the first whose first row holds an address.
                addr_cols = rows
                    .first()
                    .and_then(|r| r.iter().position(|c| Address::from_hex(c.trim()).is_ok()))
                    .into_iter()
                    .collect();
            }
            let label_cols: Vec<usize> =
                LABEL_FIELDS.iter().filter_map(|f| header.iter().position(|h| h == f)).collect();
            let stem = file_stem(path);
            for row in &rows {
                let label = label_cols
                    .iter()
                    .filter_map(|&i| row.get(i))
                    .map(|s| s.trim())
                    .find(|s| !s.is_empty())
                    .unwrap_or(&stem);
                for &c in &addr_cols {
                    match row.get(c).map(|s| s.trim()) {
                        Some(a) if !a.is_empty() => add(a, label, &mut report),
                        _ => report.bad += 1,
                    }
                }
            }
        }
        "json" | "yaml" | "yml" => {
            let v: Value = if ext == "json" {
                serde_json::from_str(&text).with_context(|| format!("parsing {} as JSON", path.display()))?
            } else {
                serde_yaml::from_str(&text).with_context(|| format!("parsing {} as YAML", path.display()))?
            };
            walk(&v, &file_stem(path), &mut |a, l| add(a, l, &mut report));
        }
        _ => {
            let stem = file_stem(path);
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
                add(line.split([',', ' ', '\t']).next().unwrap_or(line), &stem, &mut report);
            }
        }
    }
    Ok(report)
}

/// Every address-looking string in a JSON/YAML document with the nearest label above it.
fn walk(v: &Value, inherited: &str, add: &mut dyn FnMut(&str, &str)) {
    match v {
        Value::String(s) if s.starts_with("0x") || s.starts_with("0X") => add(s, inherited),
        Value::String(s) if looks_like_other_chain(s) => add(s, inherited),
        Value::Array(items) => items.iter().for_each(|i| walk(i, inherited, add)),
        Value::Object(m) => {
            let own = LABEL_FIELDS
                .iter()
                .filter_map(|f| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(f)).and_then(|(_, v)| v.as_str()))
                .find(|s| !s.trim().is_empty());
            let category = m.get("category").and_then(Value::as_str).filter(|c| Some(*c) != own);
            let label = match (own, category) {
                (Some(l), Some(c)) => format!("{l} ({c})"),
                (Some(l), None) => l.to_owned(),
                (None, _) => inherited.to_owned(),
            };
            for (k, child) in m {
                if Address::from_hex(k).is_ok() {
                    // {"0xabc...": "what it is"}
                    add(k, child.as_str().unwrap_or(&label));
                    continue;
                }
                match child {
                    // An `address` field that holds no address is a bad entry, counted.
                    Value::String(a) if k.eq_ignore_ascii_case("address") => add(a, &label),
                    Value::String(_) => {}
                    _ if own.is_none() && !STRUCTURAL.iter().any(|s| k.eq_ignore_ascii_case(s)) => walk(child, k, add),
                    _ => walk(child, &label, add),
                }
            }
        }
        _ => {}
    }
}

/// Bitcoin-style (base58, bech32) or other non-hex addresses: skipped and counted, not errors.
fn looks_like_other_chain(s: &str) -> bool {
    let s = s.trim();
    (25..=90).contains(&s.len())
        && !s.starts_with("0x")
        && !s.contains(['.', ' ', '/'])
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn file_stem(path: &Path) -> String {
    path.file_stem().map_or_else(|| "labels".to_owned(), |s| s.to_string_lossy().into_owned())
}

/// `folder/file.ext`: enough to find the pack again.
fn source_name(path: &Path) -> String {
    let file = path.file_name().map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    match path.parent().and_then(Path::file_name) {
        Some(d) => format!("{}/{file}", d.to_string_lossy()),
        None => file,
    }
}

fn split(line: &str, sep: char) -> Vec<String> {
    if sep == ',' {
        argus_models::tabular::split_csv(line)
    } else {
        line.split(sep).map(str::to_owned).collect()
    }
}

/// Suppression lists are label files too: every address in them is known benign.
///
/// # Errors
/// As [`load_labels`].
pub fn load_suppression(path: &Path, out: &mut std::collections::HashSet<Address>) -> Result<LoadReport> {
    let mut set = LabelSet::default();
    let report = load_labels(path, &mut set)?;
    out.extend(set.addresses());
    Ok(report)
}
