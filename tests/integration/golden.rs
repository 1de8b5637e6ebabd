//! Golden outputs: every masker masks the inputs of
//! `tests/fixtures/golden/cases.yaml` with a fixed key, and the outputs must
//! equal the reviewed snapshot (`snapshots/integration__golden__outputs.snap`).
//! A `fake` upgrade or a code change that alters one fails here: changing
//! them changes every snapshot's values, so it is a deliberate,
//! changelogged decision (`cargo insta review` after `INSTA_UPDATE=new`).

use scrubsnap::mask::registry;
use scrubsnap::mask::{ColumnInfo, MaskKey};
use scrubsnap::plan::masking::check_and_build;
use scrubsnap::rules::{MaskRule, OnErrorSpec};

/// One golden case.
#[derive(Debug, serde::Deserialize)]
pub struct Case {
    pub masker: String,
    pub options: serde_json::Map<String, serde_json::Value>,
    #[serde(rename = "type")]
    pub type_name: String,
    /// For a composite type: its fields (name, type).
    #[serde(default)]
    pub fields: Vec<(String, String)>,
    pub input: String,
}

/// The cases, from the fixture.
pub fn cases() -> Vec<Case> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/cases.yaml");
    let text = std::fs::read_to_string(&path).expect("tests/fixtures/golden/cases.yaml");
    serde_yaml::from_str(&text).expect("golden cases")
}

fn output(key: &MaskKey, case: &Case) -> String {
    // Built as a plan builds a column's masker: an array type gets its
    // element masker applied to every element.
    let column = if case.fields.is_empty() {
        ColumnInfo::from_type(&case.type_name, false, false)
    } else {
        ColumnInfo::composite(&case.type_name, false, case.fields.clone())
    };
    let rule = MaskRule {
        masker: case.masker.clone(),
        options: case.options.clone(),
        domain: None,
        on_error: OnErrorSpec::Fail,
        mask_empty: false,
    };
    let masked = check_and_build(&rule, &column, "default", key, "golden")
        .map_err(|e| e.to_string())
        .and_then(|m| m.masker.mask(&case.input, &m.seeder).map_err(|e| e.0));
    match masked {
        Ok(Some(v)) => v,
        Ok(None) => "NULL".to_string(),
        Err(e) => format!("ERROR {e}"),
    }
}

#[test]
fn outputs() {
    let key = MaskKey::from_material(b"golden-test-key-do-not-change").expect("key");
    let mut text = String::new();
    for case in cases() {
        let options = serde_json::Value::Object(case.options.clone());
        text.push_str(&format!(
            "{} {options} ({}) {:?}\n  => {:?}\n",
            case.masker,
            case.type_name,
            case.input,
            output(&key, &case)
        ));
    }
    insta::assert_snapshot!(text);
}

#[test]
fn every_masker_has_a_golden_case() {
    let cases = cases();
    for def in registry::MASKERS {
        assert!(cases.iter().any(|c| c.masker == def.name), "masker {} has no golden case", def.name);
    }
}
