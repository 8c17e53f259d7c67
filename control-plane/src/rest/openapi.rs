//! The OpenAPI 3.1 document of the REST face, generated from the proto descriptors and the
//! route table.
//!
//! Nothing here is written by hand except the envelope and the error body: the component
//! schemas are the control-plane messages and enums ([`ferry_proto::FILE_DESCRIPTOR_SET`]),
//! with the proto comments as descriptions, and the paths are [`ROUTES`], each with the
//! request and response messages and the comment of the gRPC method it calls.
//!
//! Types follow the proto3 JSON mapping, which the REST face speaks:
//!
//! | proto | JSON schema |
//! |---|---|
//! | `string` | `string` |
//! | `bool` | `boolean` |
//! | `int32`, `uint32` (and fixed/sint) | `integer`, with the type's bounds |
//! | `int64`, `uint64` (and fixed/sint) | `string` of decimal digits |
//! | `float`, `double` | `number` |
//! | `bytes` | `string`, base64 |
//! | enum | `string`, one of the value names |
//! | message | `$ref` to its component, which admits no other properties |
//! | `repeated T` | `array` of T |
//! | `map<string, T>` | `object` with T as `additionalProperties` |
//!
//! Only what the routes reach is in the document: the agents' messages are not.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    FileDescriptorSet, MethodDescriptorProto, ServiceDescriptorProto,
};
use serde_json::{Map, Value, json};

use super::routes::{LINKS, ROUTES, Route, Rpc};

/// The proto package of the control-plane API.
pub const PACKAGE: &str = "ferry.controlplane.v1";
/// The proto file declaring it.
const FILE: &str = "ferry/controlplane/v1/controlplane.proto";
/// Where the error body's schema and the error response live in the document.
const ERROR_SCHEMA: &str = "Error";

// Field numbers of descriptor.proto, for `SourceCodeInfo` paths.
/// `FileDescriptorProto.message_type`.
const FILE_MESSAGE: i32 = 4;
/// `FileDescriptorProto.enum_type`.
const FILE_ENUM: i32 = 5;
/// `FileDescriptorProto.service`.
const FILE_SERVICE: i32 = 6;
/// `FileDescriptorProto.syntax`: the file's opening comment is detached before it.
const FILE_SYNTAX: i32 = 12;
/// `DescriptorProto.field`, `EnumDescriptorProto.value` and `ServiceDescriptorProto.method`.
const MEMBER: i32 = 2;
/// `DescriptorProto.nested_type`.
const NESTED_MESSAGE: i32 = 3;

/// The control-plane file's descriptors, indexed.
#[derive(Debug)]
pub struct Descriptors {
    /// The file.
    file: FileDescriptorProto,
    /// Comments by `SourceCodeInfo` path: leading comments, cleaned up.
    comments: HashMap<Vec<i32>, String>,
    /// Messages by full name (`.ferry.controlplane.v1.Cluster`), with their source path.
    messages: BTreeMap<String, (Vec<i32>, DescriptorProto)>,
    /// Enums by full name, with their source path.
    enums: BTreeMap<String, (Vec<i32>, EnumDescriptorProto)>,
}

impl Descriptors {
    /// The descriptors compiled into `ferry-proto`.
    ///
    /// # Panics
    ///
    /// If the embedded set does not decode or lacks the control-plane file: a build bug.
    pub fn load() -> Descriptors {
        let set = FileDescriptorSet::decode(ferry_proto::FILE_DESCRIPTOR_SET)
            .expect("ferry-proto embeds a valid FileDescriptorSet");
        let file = set
            .file
            .into_iter()
            .find(|f| f.name() == FILE)
            .expect("the descriptor set holds the control-plane file");
        let comments = file
            .source_code_info
            .iter()
            .flat_map(|info| &info.location)
            .filter_map(|loc| {
                // The file's opening comment sits before `syntax`, attached to it or, after a
                // blank line, detached.
                let text = match &loc.leading_comments {
                    None if loc.path == [FILE_SYNTAX] => loc.leading_detached_comments.first(),
                    text => text.as_ref(),
                };
                Some((loc.path.clone(), clean_comment(text?)))
            })
            .collect();
        let mut messages = BTreeMap::new();
        let prefix = format!(".{PACKAGE}");
        for (i, message) in file.message_type.iter().enumerate() {
            index_message(
                &prefix,
                vec![FILE_MESSAGE, i as i32],
                message,
                &mut messages,
            );
        }
        let enums = file
            .enum_type
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let name = format!("{prefix}.{}", e.name());
                (name, (vec![FILE_ENUM, i as i32], e.clone()))
            })
            .collect();
        Descriptors {
            file,
            comments,
            messages,
            enums,
        }
    }

    /// The gRPC method a route calls, with its service and source path.
    ///
    /// # Panics
    ///
    /// If the proto has no such method: the route table and the proto disagree (a bug).
    pub fn method(&self, rpc: Rpc) -> (&ServiceDescriptorProto, &MethodDescriptorProto, Vec<i32>) {
        let (service_name, method_name) = rpc.proto_name();
        for (s, service) in self.file.service.iter().enumerate() {
            for (m, method) in service.method.iter().enumerate() {
                if service.name() == service_name && method.name() == method_name {
                    return (
                        service,
                        method,
                        vec![FILE_SERVICE, s as i32, MEMBER, m as i32],
                    );
                }
            }
        }
        panic!("the proto has no {service_name}.{method_name}, which the route table names")
    }

    /// A message by full name.
    ///
    /// # Panics
    ///
    /// If the file has no such message (a bug: names come from the same file).
    fn message(&self, full_name: &str) -> &(Vec<i32>, DescriptorProto) {
        self.messages
            .get(full_name)
            .unwrap_or_else(|| panic!("no message {full_name} in {FILE}"))
    }

    /// The request fields a route takes as query parameters: every field the path does not
    /// bind, unless the request is the body.
    pub fn query_params(&self, route: &Route) -> Vec<&FieldDescriptorProto> {
        if route.body {
            return Vec::new();
        }
        let (_, method, _) = self.method(route.rpc);
        let (_, request) = self.message(method.input_type());
        let bound: BTreeSet<&str> = route.path_params().collect();
        request
            .field
            .iter()
            .filter(|f| !bound.contains(f.name()))
            .collect()
    }

    /// The comment at `path`, or "".
    fn comment(&self, path: &[i32]) -> String {
        self.comments.get(path).cloned().unwrap_or_default()
    }

    /// The map entry a field's message type is, if the field is a `map<_, _>`.
    fn map_entry(&self, field: &FieldDescriptorProto) -> Option<&DescriptorProto> {
        if field.r#type() != Type::Message {
            return None;
        }
        let (_, message) = self.messages.get(field.type_name())?;
        message
            .options
            .as_ref()
            .is_some_and(|o| o.map_entry())
            .then_some(message)
    }
}

/// Adds `message` and its nested messages to `out`.
fn index_message(
    prefix: &str,
    path: Vec<i32>,
    message: &DescriptorProto,
    out: &mut BTreeMap<String, (Vec<i32>, DescriptorProto)>,
) {
    let name = format!("{prefix}.{}", message.name());
    for (i, nested) in message.nested_type.iter().enumerate() {
        let mut nested_path = path.clone();
        nested_path.extend([NESTED_MESSAGE, i as i32]);
        index_message(&name, nested_path, nested, out);
    }
    out.insert(name, (path, message.clone()));
}

/// A protoc comment as prose: each line without the one space after `//`, trimmed.
fn clean_comment(text: &str) -> String {
    text.lines()
        .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// The first sentence of a comment, on one line.
fn first_sentence(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.find(". ") {
        Some(end) => line[..=end].to_string(),
        None => line,
    }
}

/// A field's JSON name: the descriptor's `json_name`, else lowerCamelCase of its name.
pub fn json_name(field: &FieldDescriptorProto) -> String {
    if let Some(name) = &field.json_name {
        return name.clone();
    }
    let mut out = String::new();
    let mut upper = false;
    for c in field.name().chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The component name of a message or enum: its name without the package (`Cluster`).
fn component_name(full_name: &str) -> &str {
    full_name
        .strip_prefix(&format!(".{PACKAGE}."))
        .unwrap_or(full_name)
        .rsplit('.')
        .next()
        .unwrap_or(full_name)
}

/// `{"$ref": "#/components/schemas/<name>"}`.
fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Builds the document: collects the types the routes reach, then writes paths and schemas.
struct Builder<'a> {
    /// The descriptors.
    descriptors: &'a Descriptors,
    /// Full names of the messages and enums to put in the components.
    reached: BTreeSet<String>,
}

impl Builder<'_> {
    /// Adds the type `full_name` and every type its fields use.
    fn reach(&mut self, full_name: &str) {
        if !self.reached.insert(full_name.to_string()) {
            return;
        }
        if let Some((_, message)) = self.descriptors.messages.get(full_name) {
            for field in &message.field {
                // A map's entry is no component: its value type is.
                let field = match self.descriptors.map_entry(field) {
                    Some(entry) => entry
                        .field
                        .iter()
                        .find(|f| f.number() == 2)
                        .expect("a map entry has a value field"),
                    None => field,
                };
                if matches!(field.r#type(), Type::Message | Type::Enum) {
                    self.reach(field.type_name());
                }
            }
        }
    }

    /// The schema of one value of a field's type (ignoring `repeated`).
    fn scalar_schema(&self, field: &FieldDescriptorProto) -> Value {
        match field.r#type() {
            Type::String => json!({ "type": "string" }),
            Type::Bool => json!({ "type": "boolean" }),
            Type::Int32 | Type::Sint32 | Type::Sfixed32 => {
                json!({ "type": "integer", "format": "int32",
                        "minimum": i32::MIN, "maximum": i32::MAX })
            }
            Type::Uint32 | Type::Fixed32 => {
                json!({ "type": "integer", "format": "uint32", "minimum": 0, "maximum": u32::MAX })
            }
            Type::Int64 | Type::Sint64 | Type::Sfixed64 => {
                json!({ "type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$" })
            }
            Type::Uint64 | Type::Fixed64 => {
                json!({ "type": "string", "format": "uint64", "pattern": "^[0-9]{1,20}$" })
            }
            Type::Double | Type::Float => json!({ "type": "number" }),
            Type::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
            Type::Enum | Type::Message | Type::Group => {
                schema_ref(component_name(field.type_name()))
            }
        }
    }

    /// A field's schema, with its comment as description.
    fn field_schema(&self, field: &FieldDescriptorProto, description: String) -> Value {
        let mut schema = if let Some(entry) = self.descriptors.map_entry(field) {
            let value = entry
                .field
                .iter()
                .find(|f| f.number() == 2)
                .expect("a map entry has a value field");
            json!({ "type": "object", "additionalProperties": self.scalar_schema(value) })
        } else if field.label() == Label::Repeated {
            json!({ "type": "array", "items": self.scalar_schema(field) })
        } else {
            self.scalar_schema(field)
        };
        if !description.is_empty() {
            schema["description"] = Value::String(description);
        }
        schema
    }

    /// The component schema of a message.
    fn message_schema(&self, path: &[i32], message: &DescriptorProto) -> Value {
        let mut properties = Map::new();
        for (i, field) in message.field.iter().enumerate() {
            let mut field_path = path.to_vec();
            field_path.extend([MEMBER, i as i32]);
            let description = self.descriptors.comment(&field_path);
            properties.insert(json_name(field), self.field_schema(field, description));
        }
        json!({
            "type": "object",
            "description": self.descriptors.comment(path),
            "properties": properties,
            "additionalProperties": false,
        })
    }

    /// The component schema of an enum: its value names, each described in the description.
    fn enum_schema(&self, path: &[i32], e: &EnumDescriptorProto) -> Value {
        let mut description = self.descriptors.comment(path);
        for (i, value) in e.value.iter().enumerate() {
            let mut value_path = path.to_vec();
            value_path.extend([MEMBER, i as i32]);
            description.push_str(&format!(
                "\n- `{}`: {}",
                value.name(),
                self.descriptors.comment(&value_path)
            ));
        }
        let names: Vec<&str> = e.value.iter().map(|v| v.name()).collect();
        json!({ "type": "string", "enum": names, "description": description })
    }

    /// The operation object of one route.
    fn operation(&mut self, route: &Route) -> Value {
        let descriptors = self.descriptors;
        let (service, method, path) = descriptors.method(route.rpc);
        if route.body {
            self.reach(method.input_type());
        }
        self.reach(method.output_type());
        let (request_path, request) = descriptors.message(method.input_type());
        let description = descriptors.comment(&path);
        let mut parameters = Vec::new();
        for name in route.path_params() {
            let i = request
                .field
                .iter()
                .position(|f| f.name() == name)
                .unwrap_or_else(|| panic!("{} binds {name}, not a request field", route.path));
            let mut field_path = request_path.clone();
            field_path.extend([MEMBER, i as i32]);
            parameters.push(json!({
                "name": name,
                "in": "path",
                "required": true,
                "description": descriptors.comment(&field_path),
                "schema": { "type": "string", "minLength": 1 },
            }));
        }
        for field in descriptors.query_params(route) {
            let i = request
                .field
                .iter()
                .position(|f| f == field)
                .expect("a query parameter is a request field");
            let mut field_path = request_path.clone();
            field_path.extend([MEMBER, i as i32]);
            parameters.push(json!({
                "name": json_name(field),
                "in": "query",
                "required": false,
                "description": descriptors.comment(&field_path),
                "schema": self.scalar_schema(field),
            }));
        }
        let mut operation = json!({
            "operationId": method.name(),
            "tags": [service.name()],
            "summary": first_sentence(&description),
            "description": format!(
                "{description}\n\nCalls gRPC `{PACKAGE}.{}/{}`.",
                service.name(),
                method.name()
            ),
            "parameters": parameters,
            "responses": responses(component_name(method.output_type()), route.rpc),
        });
        if route.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": {
                    "schema": schema_ref(component_name(method.input_type())),
                }},
            });
        }
        operation
    }

    /// The document.
    fn document(mut self) -> Value {
        let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
        for route in ROUTES {
            let operation = self.operation(route);
            paths
                .entry(route.path)
                .or_default()
                .insert(route.method.to_ascii_lowercase(), operation);
        }
        let mut schemas = Map::new();
        for name in &self.reached {
            let schema = if let Some((path, message)) = self.descriptors.messages.get(name) {
                self.message_schema(path, message)
            } else {
                let (path, e) = &self.descriptors.enums[name];
                self.enum_schema(path, e)
            };
            schemas.insert(component_name(name).to_string(), schema);
        }
        schemas.insert(ERROR_SCHEMA.into(), error_schema());
        let tags: Vec<Value> = self
            .descriptors
            .file
            .service
            .iter()
            .enumerate()
            .filter(|(_, s)| ROUTES.iter().any(|r| r.rpc.proto_name().0 == s.name()))
            .map(|(i, s)| {
                json!({
                    "name": s.name(),
                    "description": self.descriptors.comment(&[FILE_SERVICE, i as i32]),
                })
            })
            .collect();
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "Ferry control-plane API",
                "version": "v1",
                "description": format!(
                    "{}\n\nThe REST/JSON face of the gRPC API (package `{PACKAGE}`): the same \
                     calls, checks and errors. Bodies follow the proto3 JSON mapping \
                     (lowerCamelCase names, enums by name, 64-bit integers as strings). \
                     Every call needs `Authorization: Bearer <token>`.",
                    self.descriptors.comment(&[FILE_SYNTAX])
                ),
            },
            "tags": tags,
            "paths": paths,
            "components": {
                "schemas": schemas,
                "responses": { ERROR_SCHEMA: {
                    "description": "The call failed; see `code`, `reason` and `fieldViolations`.",
                    "content": { "application/json": { "schema": schema_ref(ERROR_SCHEMA) } },
                }},
                "securitySchemes": { "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A token from `ferry token create --tenant T --role R` \
                                    (or printed by `ferry dev`).",
                }},
            },
            "security": [{ "bearerAuth": [] }],
        })
    }
}

/// A route's responses: 200 with `output` (and the [`LINKS`] from `rpc`), and the error
/// statuses with the error body.
fn responses(output: &str, rpc: Rpc) -> Value {
    let mut responses = Map::new();
    let mut ok = json!({
        "description": "OK",
        "content": { "application/json": { "schema": schema_ref(output) } },
    });
    let links: Map<String, Value> = LINKS
        .iter()
        .filter(|link| link.from == rpc)
        .map(|link| {
            let target = link.to.proto_name().1;
            let link = json!({
                "operationId": target,
                "parameters": { link.field: format!("$response.body#{}", link.pointer) },
            });
            (target.to_string(), link)
        })
        .collect();
    if !links.is_empty() {
        ok["links"] = Value::Object(links);
    }
    responses.insert("200".into(), ok);
    let error = json!({ "$ref": format!("#/components/responses/{ERROR_SCHEMA}") });
    for status in [
        "400", "401", "403", "404", "409", "413", "415", "429", "503",
    ] {
        responses.insert(status.into(), error.clone());
    }
    responses.insert("default".into(), error);
    Value::Object(responses)
}

/// The schema of [`super::error::ErrorBody`].
fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "Every error response's body. The same reason and field violations as \
                        the gRPC status's google.rpc.ErrorInfo and google.rpc.BadRequest.",
        "required": ["code", "message", "reason", "fieldViolations"],
        "properties": {
            "code": { "type": "string",
                      "description": "The gRPC code's name, e.g. `NOT_FOUND`." },
            "message": { "type": "string", "description": "A human sentence." },
            "reason": { "type": "string",
                        "description": "A stable reason a program can branch on, e.g. \
                                        `NAME_TAKEN`; empty if none." },
            "fieldViolations": {
                "type": "array",
                "description": "Every invalid field of the request; empty unless invalid.",
                "items": {
                    "type": "object",
                    "required": ["field", "description"],
                    "properties": {
                        "field": { "type": "string",
                                   "description": "The field's path, e.g. `zones[1]` or `broker_config[num.partitions]` (spec fields by their own names)." },
                        "description": { "type": "string",
                                         "description": "What is wrong with it." },
                    },
                },
            },
        },
    })
}

/// The OpenAPI document of every route in [`ROUTES`].
pub fn document(descriptors: &Descriptors) -> Value {
    Builder {
        descriptors,
        reached: BTreeSet::new(),
    }
    .document()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_messages() {
        let doc = document(&Descriptors::load());
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
            assert_eq!(op["operationId"], route.rpc.proto_name().1, "{route:?}");
        }
        let schemas = &doc["components"]["schemas"];
        let cluster = &schemas["Cluster"];
        assert!(
            cluster["description"]
                .as_str()
                .unwrap()
                .starts_with("A Kafka cluster")
        );
        assert_eq!(cluster["properties"]["currentVersion"]["type"], "string");
        assert_eq!(
            cluster["properties"]["status"]["$ref"],
            "#/components/schemas/ClusterStatus"
        );
        let spec = &schemas["ClusterSpec"]["properties"];
        assert_eq!(spec["tags"]["type"], "object");
        assert_eq!(spec["tags"]["additionalProperties"]["type"], "string");
        assert_eq!(spec["zones"]["items"]["type"], "string");
        assert_eq!(spec["brokerCount"]["type"], "integer");
        let states = schemas["ClusterState"]["enum"].as_array().unwrap();
        assert!(states.contains(&json!("CLUSTER_STATE_ACTIVE")));
        // The agents' messages are not reachable from any route.
        assert!(schemas.get("RegisterHostRequest").is_none());
        assert!(schemas.get("ClusterSpec.BrokerConfigEntry").is_none());
        assert!(schemas.get("BrokerConfigEntry").is_none());
    }

    #[test]
    fn list_routes_take_their_paging_as_query_parameters() {
        let doc = document(&Descriptors::load());
        let params = doc["paths"]["/v1/clusters"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["namePrefix", "pageSize", "pageToken"]);
        let delete = &doc["paths"]["/v1/clusters/{cluster_id}"]["delete"]["parameters"];
        assert_eq!(delete[0]["in"], "path");
        assert_eq!(delete[1]["name"], "currentVersion");
        assert_eq!(delete[1]["schema"]["type"], "string");
    }

    #[test]
    fn a_created_cluster_links_to_the_calls_about_it() {
        let doc = document(&Descriptors::load());
        let links = &doc["paths"]["/v1/clusters"]["post"]["responses"]["200"]["links"];
        assert_eq!(links["GetCluster"]["operationId"], "GetCluster");
        assert_eq!(
            links["GetCluster"]["parameters"]["cluster_id"],
            "$response.body#/cluster/id"
        );
        assert_eq!(
            links["GetOperation"]["parameters"]["operation_id"],
            "$response.body#/operation/id"
        );
    }

    #[test]
    fn the_file_comment_and_the_method_comments_become_descriptions() {
        let doc = document(&Descriptors::load());
        let info = doc["info"]["description"].as_str().unwrap();
        assert!(info.starts_with("The control-plane API"), "{info}");
        let delete = &doc["paths"]["/v1/clusters/{cluster_id}"]["delete"];
        assert_eq!(
            delete["summary"],
            "Starts the DELETE operation: the cluster goes to DELETING, its nodes are stopped and \
             their data removed, then the cluster disappears."
        );
        // Requests that travel in the path and query are no components.
        assert!(
            doc["components"]["schemas"]
                .get("GetClusterRequest")
                .is_none()
        );
        assert!(doc["components"]["schemas"]["CreateClusterRequest"].is_object());
    }

    #[test]
    fn json_names_are_lower_camel_case() {
        let field = FieldDescriptorProto {
            name: Some("storage_per_broker_bytes".into()),
            ..Default::default()
        };
        assert_eq!(json_name(&field), "storagePerBrokerBytes");
    }
}
