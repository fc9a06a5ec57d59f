//! `mfiguard-schema-check SCHEMA`: validates each JSON line of stdin (audit records) against
//! the JSON Schema file SCHEMA; prints `LINE: PROBLEM at PATH` for each problem and exits 1 when
//! there is any, 2 when SCHEMA or a line cannot be read as JSON. The test suite's shared record
//! reader (tests/common) runs it on every log an end-to-end test reads.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

#[cfg(target_pointer_width = "64")]
fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: mfiguard-schema-check SCHEMA < RECORDS");
        return ExitCode::from(2);
    };
    let schema: serde_json::Value = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
    };
    let validator = match jsonschema::draft202012::new(&schema) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{path}: not a valid schema: {e}");
            return ExitCode::from(2);
        }
    };
    // The same schema with only one of its kinds at the root, for problems that name the field
    // (the root's oneOf says only that no kind fits).
    let kind = |def: &str| {
        let mut one = schema.clone();
        if let Some(o) = one.as_object_mut() {
            o.remove("oneOf");
            o.insert("$ref".into(), format!("#/$defs/{def}").into());
        }
        jsonschema::draft202012::new(&one).ok()
    };
    let (call, error) = (kind("call"), kind("error"));
    let mut bad = false;
    use std::io::BufRead;
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let Ok(line) = line else {
            return ExitCode::from(2);
        };
        if line.trim().is_empty() {
            continue;
        }
        let record: serde_json::Value = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                println!("{}: not JSON: {e}", i + 1);
                return ExitCode::from(2);
            }
        };
        if validator.is_valid(&record) {
            continue;
        }
        bad = true;
        let which = match record.get("record").and_then(serde_json::Value::as_str) {
            Some("error") => error.as_ref(),
            _ => call.as_ref(),
        };
        for e in which.unwrap_or(&validator).iter_errors(&record) {
            println!("{}: {e} at {}", i + 1, e.instance_path());
        }
    }
    if bad {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The validator is built for 64-bit hosts only: the tests run it on the host.
#[cfg(not(target_pointer_width = "64"))]
fn main() -> ExitCode {
    eprintln!("mfiguard-schema-check: built for 64-bit hosts only");
    ExitCode::from(2)
}
