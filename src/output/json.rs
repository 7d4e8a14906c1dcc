//! `-o json`: the server's JSON, pretty-printed with kubectl's four-space
//! indent. Objects are printed as they came, never reshaped, so what
//! `curl --unix-socket` shows and what `drover get -o json` shows agree.

use serde::Serialize;
use serde_json::Value;

/// Four-space indented JSON followed by a newline.
pub fn pretty(value: &Value) -> String {
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    // Serialising a Value into memory cannot fail.
    value.serialize(&mut ser).expect("a JSON value serialises");
    let mut text = String::from_utf8(buf).expect("serde_json writes UTF-8");
    text.push('\n');
    text
}

/// `{"kind": "List", "items": [...]}`, the shape of every list (product.md §4).
pub fn list(items: Vec<Value>) -> Value {
    serde_json::json!({ "kind": "List", "items": items })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_list_has_the_documented_shape() {
        let pod = json!({"kind": "Pod", "metadata": {"name": "web-1"}});
        let out = pretty(&list(vec![pod.clone()]));
        let back: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back["kind"], "List");
        assert_eq!(back["items"], json!([pod]));
        assert!(out.starts_with("{\n    \""), "four-space indent: {out}");
        assert!(out.ends_with("}\n"));
    }

    #[test]
    fn objects_are_not_reshaped() {
        let obj = json!({"kind": "Node", "spec": {"unschedulable": true}, "extra": [1, 2]});
        let back: Value = serde_json::from_str(&pretty(&obj)).unwrap();
        assert_eq!(back, obj);
    }
}
