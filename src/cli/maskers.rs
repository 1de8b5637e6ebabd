//! `scrubsnap maskers` and `scrubsnap rules schema`: the masker registry,
//! for people and for editors.

use clap::ValueEnum;
use scrubsnap::mask::registry::{self, Injective, MASKERS};
use serde_json::{json, Map, Value};

use super::{Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

pub async fn run(args: Args, _ctx: &Context) -> Result<(), Failure> {
    match args.format {
        Format::Json => {
            let text = serde_json::to_string_pretty(&registry::describe()).map_err(Failure::runtime)?;
            println!("{text}");
        }
        Format::Text => {
            for d in MASKERS {
                let injective = match d.injective {
                    Injective::Yes => "injective (safe on unique columns)",
                    Injective::No => "not injective",
                    Injective::Depends => "injective depending on options",
                };
                let types: Vec<&str> = d.types.iter().map(|t| t.name()).collect();
                println!("{}\n    {}\n    types: {}; {}", d.name, d.summary, types.join(", "), injective);
                for o in d.options {
                    println!(
                        "    option {} ({}, default {}): {}",
                        o.name,
                        o.kind,
                        if o.default.is_empty() { "none" } else { o.default },
                        o.help
                    );
                }
                println!("    example: {}\n", d.example);
            }
            println!("Every rule also takes: domain (columns in one domain map values identically), on_error (fail, null or {{fixed: VALUE}}), mask_empty (mask empty strings too).");
        }
    }
    Ok(())
}

/// The JSON Schema of rules files, generated from the registry.
pub fn schema() -> Value {
    let common = |props: &mut Map<String, Value>| {
        props.insert(
            "domain".into(),
            json!({"type": "string", "description": "columns in one domain map values identically"}),
        );
        props.insert("on_error".into(), json!({"description": "when the masker fails on a value", "oneOf": [{"enum": ["fail", "null"]}, {"type": "object", "properties": {"fixed": {"type": "string"}}, "required": ["fixed"], "additionalProperties": false}]}));
        props.insert("mask_empty".into(), json!({"type": "boolean", "description": "mask empty strings too"}));
        props.insert("reason".into(), json!({"type": "string"}));
    };
    let mut variants = vec![
        json!({"const": "keep", "description": "copied as is, after review"}),
        json!({"type": "object", "properties": {"keep": {"oneOf": [{"type": "boolean"}, {"type": "string"}, {"type": "object", "properties": {"reason": {"type": "string"}}, "additionalProperties": false}]}}, "required": ["keep"], "additionalProperties": false}),
        json!({"enum": MASKERS.iter().map(|d| d.name).collect::<Vec<_>>(), "description": "a masker with default options"}),
    ];
    for d in MASKERS {
        let mut props = Map::new();
        props.insert("mask".into(), json!({"const": d.name, "description": d.summary}));
        for o in d.options {
            props.insert(o.name.into(), json!({"type": o.kind, "description": o.help}));
        }
        common(&mut props);
        variants
            .push(json!({"type": "object", "properties": props, "required": ["mask"], "additionalProperties": false}));
    }
    let mut pattern_variants = Vec::new();
    for v in &variants {
        if let Some(obj) = v.as_object().filter(|o| o.get("type") == Some(&json!("object"))) {
            let mut o = obj.clone();
            if let Some(Value::Object(p)) = o.get_mut("properties") {
                p.insert("column".into(), json!({"type": "string", "description": "regex over column names"}));
                p.insert("table".into(), json!({"type": "string", "description": "glob over schema.table"}));
            }
            if let Some(Value::Array(r)) = o.get_mut("required") {
                r.push(json!("column"));
            }
            pattern_variants.push(Value::Object(o));
        }
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "scrubsnap rules file",
        "type": "object",
        "additionalProperties": false,
        "required": ["version"],
        "properties": {
            "version": {"const": scrubsnap::rules::VERSION},
            "strict": {"type": "boolean", "description": "every column of every dumped table must be masked or kept"},
            "include": {"type": "array", "items": {"type": "string"}, "description": "other rules files, relative to this one"},
            "patterns": {"type": "array", "items": {"oneOf": pattern_variants}},
            "tables": {"type": "object", "additionalProperties": {"$ref": "#/$defs/table"}}
        },
        "$defs": {
            "table": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "rows": {"enum": ["all", "skip"]},
                    "where": {"type": "string", "description": "SQL condition: only matching rows are dumped (may break foreign keys)"},
                    "columns": {"type": "object", "additionalProperties": {"$ref": "#/$defs/column"}}
                }
            },
            "column": {"oneOf": variants}
        }
    })
}
