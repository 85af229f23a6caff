//! The `Service` trait every service implements, and the description of its actions.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

use crate::{Error, RequestContext, Result};

/// Hints for clients about what an action does (they become MCP tool annotations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionAnnotations {
    /// The action changes nothing.
    pub read_only: bool,
    /// The action may remove or overwrite data.
    pub destructive: bool,
    /// Repeating the action with the same arguments has no further effect.
    pub idempotent: bool,
}

/// One action of a service: its name, what it does and the JSON Schemas of its arguments and
/// result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionSpec {
    /// Action name, unique within its service (`read`, `store`, ...).
    pub name: String,
    /// One or two sentences for humans and agents.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub params_schema: Value,
    /// JSON Schema of the result.
    pub result_schema: Value,
    /// Behaviour hints.
    pub annotations: ActionAnnotations,
}

impl ActionSpec {
    /// Describes an action whose arguments deserialize into `P` and whose result serializes
    /// from `R`; both schemas are derived with `schemars`. The action starts out as neither
    /// read-only, destructive nor idempotent; use the builder methods to say otherwise.
    pub fn new<P: JsonSchema, R: JsonSchema>(
        name: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        ActionSpec {
            name: name.into(),
            description: description.into(),
            params_schema: schemars::schema_for!(P).to_value(),
            result_schema: schemars::schema_for!(R).to_value(),
            annotations: ActionAnnotations::default(),
        }
    }

    /// Marks the action read-only (and therefore idempotent and not destructive).
    pub fn read_only(mut self) -> Self {
        self.annotations = ActionAnnotations {
            read_only: true,
            destructive: false,
            idempotent: true,
        };
        self
    }

    /// Marks the action destructive.
    pub fn destructive(mut self) -> Self {
        self.annotations.destructive = true;
        self
    }

    /// Marks the action idempotent.
    pub fn idempotent(mut self) -> Self {
        self.annotations.idempotent = true;
        self
    }
}

/// State of one backend a service depends on, for `/health` and readiness checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendHealth {
    /// What the backend is used for, e.g. `kv` or `locks`.
    pub role: String,
    /// Which backend, e.g. `memory`, `redis`, `postgres`, `neo4j`.
    pub backend: String,
    /// Whether it answered.
    pub ok: bool,
    /// The error when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl BackendHealth {
    /// Builds a health entry from the outcome of a backend ping.
    pub fn from_ping(role: &str, backend: &str, outcome: Result<()>) -> Self {
        BackendHealth {
            role: role.to_owned(),
            backend: backend.to_owned(),
            ok: outcome.is_ok(),
            detail: outcome.err().map(|err| err.to_string()),
        }
    }
}

/// A named set of actions reachable through the [`Registry`](crate::Registry).
///
/// `call` is the JSON adapter every transport uses; services also expose typed Rust methods
/// and `call` should do no more than parse arguments, call them and serialize the result.
#[async_trait]
pub trait Service: Send + Sync {
    /// The service name (`files`, `memory`, `context`); MCP tools are `{name}_{action}`.
    fn name(&self) -> &str;

    /// Every action the service serves.
    fn actions(&self) -> &[ActionSpec];

    /// Runs `action` with JSON `params`. Unknown actions are rejected by the registry before
    /// this is called.
    async fn call(
        &self,
        action: &str,
        params: Params,
        ctx: &RequestContext,
    ) -> Result<ActionOutput>;

    /// Pings every backend the service uses.
    async fn health(&self) -> Vec<BackendHealth> {
        Vec::new()
    }

    /// Hit and miss counts of the service's in-process cache, if it has one.
    fn cache_stats(&self) -> Option<CacheStats> {
        None
    }
}

/// Hit and miss counts of a service's in-process cache since it started (for metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that had to go to the backend.
    pub misses: u64,
}

impl CacheStats {
    /// `hits / (hits + misses)`, 0 before the first lookup.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

/// The JSON arguments of a call as the transport got them: a parsed [`Value`], or JSON text
/// (the arguments of a stdio request line, copied out of it), which [`parse_params`] reads
/// straight into the action's parameters instead of building a `Value` first.
#[derive(Clone, Debug)]
pub enum Params {
    /// Parsed arguments.
    Value(Value),
    /// Arguments as JSON text.
    Json(Box<RawValue>),
}

impl From<Value> for Params {
    fn from(value: Value) -> Self {
        Params::Value(value)
    }
}

impl From<Box<RawValue>> for Params {
    fn from(json: Box<RawValue>) -> Self {
        Params::Json(json)
    }
}

/// Parses action arguments into `T`, turning serde's message into an
/// [`Error::InvalidArgument`] that names the action and the offending field (`store: ttl:
/// invalid type: floating point ...`, `edit: edits[0]: unknown field ...`). A JSON `null`
/// counts as `{}` so that actions without required arguments can be called with no body.
/// Arguments given as JSON text get the same messages as parsed ones.
pub fn parse_params<T: DeserializeOwned>(action: &str, params: impl Into<Params>) -> Result<T> {
    let not_object =
        || Error::InvalidArgument(format!("{action}: arguments must be a JSON object"));
    let parsed = match params.into() {
        Params::Value(Value::Null) => {
            serde_path_to_error::deserialize(Value::Object(Default::default()))
        }
        Params::Value(params) if params.is_object() => serde_path_to_error::deserialize(params),
        Params::Value(_) => return Err(not_object()),
        Params::Json(json) => {
            let text = match json.get() {
                "null" => "{}",
                text if text.starts_with('{') => text,
                _ => return Err(not_object()),
            };
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text))
        }
    };
    parsed.map_err(|err| {
        let path = err.path().to_string();
        let inner = without_position(&err.into_inner());
        if path == "." {
            Error::InvalidArgument(format!("{action}: {inner}"))
        } else {
            Error::InvalidArgument(format!("{action}: {path}: {inner}"))
        }
    })
}

/// serde_json's message without the " at line L column C" that errors from JSON text carry,
/// so that both kinds of [`Params`] give the same message.
fn without_position(err: &serde_json::Error) -> String {
    let message = err.to_string();
    if err.line() == 0 {
        return message;
    }
    let position = format!(" at line {} column {}", err.line(), err.column());
    match message.strip_suffix(&position) {
        Some(bare) => bare.to_owned(),
        None => message,
    }
}

/// Serializes an action result.
pub fn to_result<T: Serialize>(result: &T) -> Result<ActionOutput> {
    serde_json::value::to_raw_value(result)
        .map(|json| ActionOutput(Output::Json(json)))
        .map_err(serialization_failed)
}

fn serialization_failed(err: serde_json::Error) -> Error {
    Error::Internal(format!("result serialization failed: {err}"))
}

/// An action's result as JSON text, serialized once by the service ([`to_result`]).
/// Transports copy it into their answers (a REST body, a WebSocket frame, MCP structured
/// content) instead of building a [`Value`] tree and serializing it again; building and
/// freeing that tree was a fifth of the CPU of a small call (`BENCHMARKS.md`).
#[derive(Clone, Debug)]
pub struct ActionOutput(Output);

#[derive(Clone, Debug)]
enum Output {
    /// The whole result.
    Json(Box<RawValue>),
    /// An object kept in two pieces, [`ActionOutput::with_text`].
    WithText {
        field: &'static str,
        text: Arc<RawValue>,
        rest: Box<RawValue>,
        /// The whole object, put together when first asked for.
        whole: OnceLock<Box<str>>,
    },
}

/// The pieces of a result made by [`ActionOutput::with_text`].
pub struct TextPieces<'a> {
    /// The name of the field holding the text.
    pub field: &'a str,
    /// The text, a JSON string.
    pub text: &'a RawValue,
    /// The other fields, a JSON object.
    pub rest: &'a RawValue,
}

impl ActionOutput {
    /// An object result whose string field `field` (a name that needs no JSON escaping) is
    /// the text a model reads, `text`, already a JSON string (a cached file's text, escaped
    /// once when it was cached), and whose other fields are `rest`, which must serialize to
    /// an object without `field`. MCP shows such a text as is, after the other fields as
    /// JSON, and takes the pieces without parsing the result.
    pub fn with_text<T: Serialize>(
        field: &'static str,
        text: Arc<RawValue>,
        rest: &T,
    ) -> Result<ActionOutput> {
        let rest = serde_json::value::to_raw_value(rest).map_err(serialization_failed)?;
        let plain_name = !field
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control());
        if !plain_name || !text.get().starts_with('"') || !rest.get().starts_with('{') {
            return Err(Error::Internal(format!(
                "result field `{field}` must be a string beside an object"
            )));
        }
        Ok(ActionOutput(Output::WithText {
            field,
            text,
            rest,
            whole: OnceLock::new(),
        }))
    }

    /// The result's compact JSON text.
    pub fn json(&self) -> &str {
        match &self.0 {
            Output::Json(json) => json.get(),
            Output::WithText { whole, .. } => whole.get_or_init(|| {
                let mut json = Vec::new();
                self.write_json(&mut json);
                match String::from_utf8(json) {
                    Ok(json) => json.into_boxed_str(),
                    Err(err) => String::from_utf8_lossy(err.as_bytes()).into(),
                }
            }),
        }
    }

    /// Appends the result's compact JSON text to `out`, without putting a result made in
    /// pieces together first.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Output::Json(json) => out.extend_from_slice(json.get().as_bytes()),
            Output::WithText {
                field, text, rest, ..
            } => {
                out.extend_from_slice(b"{\"");
                out.extend_from_slice(field.as_bytes());
                out.extend_from_slice(b"\":");
                out.extend_from_slice(text.get().as_bytes());
                match &rest.get()[1..] {
                    "}" => out.push(b'}'),
                    others => {
                        out.push(b',');
                        out.extend_from_slice(others.as_bytes());
                    }
                }
            }
        }
    }

    /// The result's compact JSON text, owned (a response body).
    pub fn into_json(self) -> String {
        match self.0 {
            Output::Json(json) => String::from(Box::<str>::from(json)),
            with_text => ActionOutput(with_text).json().to_owned(),
        }
    }

    /// The pieces of a result made by [`ActionOutput::with_text`].
    pub fn text_pieces(&self) -> Option<TextPieces<'_>> {
        match &self.0 {
            Output::Json(_) => None,
            Output::WithText {
                field, text, rest, ..
            } => Some(TextPieces { field, text, rest }),
        }
    }

    /// Whether the result is a JSON object.
    pub fn is_object(&self) -> bool {
        match &self.0 {
            Output::Json(json) => json.get().starts_with('{'),
            Output::WithText { .. } => true,
        }
    }

    /// The result as a [`Value`], for callers that look inside it.
    pub fn to_value(&self) -> Result<Value> {
        serde_json::from_str(self.json())
            .map_err(|err| Error::Internal(format!("result cannot be read back: {err}")))
    }
}

impl Serialize for ActionOutput {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match &self.0 {
            Output::Json(json) => json.serialize(serializer),
            Output::WithText { .. } => RawValue::from_string(self.json().to_owned())
                .map_err(serde::ser::Error::custom)?
                .serialize(serializer),
        }
    }
}

/// Compares the result with a JSON value, as parsed (tests, mostly).
impl PartialEq<Value> for ActionOutput {
    fn eq(&self, other: &Value) -> bool {
        self.to_value().is_ok_and(|value| &value == other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct ReadParams {
        path: String,
        #[allow(dead_code)]
        offset: Option<u64>,
    }

    #[test]
    fn spec_carries_the_params_schema() {
        let spec = ActionSpec::new::<ReadParams, String>("read", "Read a file").read_only();
        assert_eq!(spec.params_schema["type"], "object");
        assert_eq!(spec.params_schema["required"], serde_json::json!(["path"]));
        assert!(spec.annotations.read_only && spec.annotations.idempotent);
    }

    #[test]
    fn an_output_in_pieces_reads_as_the_whole_object() {
        let text = Arc::from(serde_json::value::to_raw_value("a \"quoted\"\nline").unwrap());
        let output = ActionOutput::with_text("content", text, &json!({"version": 2})).unwrap();
        let whole = json!({"content": "a \"quoted\"\nline", "version": 2});
        assert_eq!(output, whole);
        assert!(output.is_object());
        let mut written = Vec::new();
        output.write_json(&mut written);
        assert_eq!(written, output.json().as_bytes());
        assert_eq!(serde_json::to_value(&output).unwrap(), whole);
        let pieces = output.text_pieces().unwrap();
        assert_eq!(
            (pieces.field, pieces.rest.get()),
            ("content", r#"{"version":2}"#)
        );
        assert_eq!(output.clone().into_json(), output.json());

        let alone = ActionOutput::with_text(
            "content",
            Arc::from(serde_json::value::to_raw_value("x").unwrap()),
            &json!({}),
        )
        .unwrap();
        assert_eq!(alone.json(), r#"{"content":"x"}"#);

        let plain = to_result(&json!([1, 2])).unwrap();
        assert!(!plain.is_object() && plain.text_pieces().is_none());
        assert_eq!(plain.into_json(), "[1,2]");
    }

    #[test]
    fn an_output_in_pieces_needs_a_string_beside_an_object() {
        let raw = |value: Value| Arc::from(serde_json::value::to_raw_value(&value).unwrap());
        for (field, text, rest) in [
            ("content", raw(json!(1)), json!({})),
            ("content", raw(json!("x")), json!([1])),
            ("con\"tent", raw(json!("x")), json!({})),
        ] {
            let made = ActionOutput::with_text(field, text, &rest);
            assert!(matches!(made, Err(Error::Internal(_))), "{field} {rest}");
        }
    }

    #[test]
    fn arguments_as_json_text_parse_as_parsed_ones_do() {
        for args in [
            json!({"path": "a"}),
            json!({"path": "a", "offset": 3}),
            json!({}),
            json!({"path": 3}),
            json!({"path": "a", "offset": -1}),
            json!({"path": "a", "offset": 1.5}),
            json!({"path": "a", "x": 1}),
            json!([1]),
            json!("text"),
            Value::Null,
        ] {
            let text = serde_json::value::to_raw_value(&args).unwrap();
            let from_value = parse_params::<ReadParams>("read", args.clone()).map(|p| p.path);
            let from_text = parse_params::<ReadParams>("read", text).map(|p| p.path);
            assert_eq!(from_value, from_text, "{args}");
        }
    }

    #[test]
    fn parse_params_gives_clear_errors() {
        let ok: ReadParams = parse_params("read", serde_json::json!({"path": "a"})).unwrap();
        assert_eq!(ok.path, "a");
        let missing = parse_params::<ReadParams>("read", serde_json::json!({})).unwrap_err();
        assert!(
            matches!(&missing, Error::InvalidArgument(m) if m.contains("missing field `path`"))
        );
        let wrong = parse_params::<ReadParams>("read", serde_json::json!({"path": 3})).unwrap_err();
        assert!(
            matches!(&wrong, Error::InvalidArgument(m) if m.starts_with("read: path: invalid type")),
            "{wrong:?}"
        );
        let negative =
            parse_params::<ReadParams>("read", serde_json::json!({"path": "a", "offset": -1}))
                .unwrap_err();
        assert!(
            matches!(&negative, Error::InvalidArgument(m) if m.contains("offset: invalid value: integer `-1`")),
            "{negative:?}"
        );
        let unknown = parse_params::<ReadParams>("read", serde_json::json!({"path": "a", "x": 1}))
            .unwrap_err();
        assert!(matches!(&unknown, Error::InvalidArgument(m) if m.contains("unknown field")));
        let not_object = parse_params::<ReadParams>("read", serde_json::json!([1])).unwrap_err();
        assert!(matches!(not_object, Error::InvalidArgument(_)));
    }
}
