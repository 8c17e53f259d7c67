//! The route table: every REST route, its HTTP method and path, and the gRPC method it calls.
//!
//! [`ROUTES`] is the one definition both the router ([`find`]) and the OpenAPI document
//! ([`super::openapi`]) read. A route names its gRPC method; the request and response messages,
//! the query parameters and the descriptions come from that method's descriptor, so adding a
//! route is one line here plus one arm in `Rest::call` (`rest/mod.rs`).
//!
//! Binding rules (those of `google.api.http`, simplified):
//!
//! - `{field}` in a path binds one non-empty, percent-decoded segment to that request field;
//! - a route with a body takes the whole request message as its JSON body, and no query;
//! - a route without a body takes every other request field as a query parameter, named in
//!   lowerCamelCase (the proto3 JSON name).

use http::Method;

/// The gRPC methods the REST face serves; each is the service trait method of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// `ClusterService.CreateCluster`.
    CreateCluster,
    /// `ClusterService.ListClusters`.
    ListClusters,
    /// `ClusterService.GetCluster`.
    GetCluster,
    /// `ClusterService.DeleteCluster`.
    DeleteCluster,
    /// `ClusterService.GetBootstrapBrokers`.
    GetBootstrapBrokers,
    /// `ClusterService.ListNodes`.
    ListNodes,
    /// `ClusterService.UpdateBrokerCount`.
    UpdateBrokerCount,
    /// `ClusterService.UpdateTags`.
    UpdateTags,
    /// `ClusterService.UpdateClusterConfiguration`.
    UpdateClusterConfiguration,
    /// `ConfigurationService.CreateConfiguration`.
    CreateConfiguration,
    /// `ConfigurationService.ListConfigurations`.
    ListConfigurations,
    /// `ConfigurationService.GetConfiguration`.
    GetConfiguration,
    /// `ConfigurationService.UpdateConfiguration`.
    UpdateConfiguration,
    /// `ConfigurationService.DeleteConfiguration`.
    DeleteConfiguration,
    /// `ConfigurationService.ListConfigurationRevisions`.
    ListConfigurationRevisions,
    /// `ConfigurationService.GetConfigurationRevision`.
    GetConfigurationRevision,
    /// `OperationService.ListOperations`.
    ListOperations,
    /// `OperationService.GetOperation`.
    GetOperation,
    /// `HostService.ListHosts`.
    ListHosts,
}

impl Rpc {
    /// The service and method names in the proto (`ClusterService`, `CreateCluster`).
    pub fn proto_name(self) -> (&'static str, &'static str) {
        match self {
            Rpc::CreateCluster => ("ClusterService", "CreateCluster"),
            Rpc::ListClusters => ("ClusterService", "ListClusters"),
            Rpc::GetCluster => ("ClusterService", "GetCluster"),
            Rpc::DeleteCluster => ("ClusterService", "DeleteCluster"),
            Rpc::GetBootstrapBrokers => ("ClusterService", "GetBootstrapBrokers"),
            Rpc::ListNodes => ("ClusterService", "ListNodes"),
            Rpc::UpdateBrokerCount => ("ClusterService", "UpdateBrokerCount"),
            Rpc::UpdateTags => ("ClusterService", "UpdateTags"),
            Rpc::UpdateClusterConfiguration => ("ClusterService", "UpdateClusterConfiguration"),
            Rpc::CreateConfiguration => ("ConfigurationService", "CreateConfiguration"),
            Rpc::ListConfigurations => ("ConfigurationService", "ListConfigurations"),
            Rpc::GetConfiguration => ("ConfigurationService", "GetConfiguration"),
            Rpc::UpdateConfiguration => ("ConfigurationService", "UpdateConfiguration"),
            Rpc::DeleteConfiguration => ("ConfigurationService", "DeleteConfiguration"),
            Rpc::ListConfigurationRevisions => {
                ("ConfigurationService", "ListConfigurationRevisions")
            }
            Rpc::GetConfigurationRevision => ("ConfigurationService", "GetConfigurationRevision"),
            Rpc::ListOperations => ("OperationService", "ListOperations"),
            Rpc::GetOperation => ("OperationService", "GetOperation"),
            Rpc::ListHosts => ("HostService", "ListHosts"),
        }
    }
}

/// One REST route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method, upper case (`GET`, `POST`, `DELETE`).
    pub method: &'static str,
    /// The path template: literal segments and `{field}` segments binding request fields.
    pub path: &'static str,
    /// Whether the request message is the JSON body (else: path and query).
    pub body: bool,
    /// The gRPC method it calls.
    pub rpc: Rpc,
}

/// Every REST route, in the order the OpenAPI document lists them. MSK's REST API is the
/// model for the paths.
pub const ROUTES: &[Route] = &[
    route("POST", "/v1/clusters", true, Rpc::CreateCluster),
    route("GET", "/v1/clusters", false, Rpc::ListClusters),
    route("GET", "/v1/clusters/{cluster_id}", false, Rpc::GetCluster),
    route(
        "DELETE",
        "/v1/clusters/{cluster_id}",
        false,
        Rpc::DeleteCluster,
    ),
    route(
        "GET",
        "/v1/clusters/{cluster_id}/bootstrap-brokers",
        false,
        Rpc::GetBootstrapBrokers,
    ),
    route(
        "GET",
        "/v1/clusters/{cluster_id}/nodes",
        false,
        Rpc::ListNodes,
    ),
    route(
        "PUT",
        "/v1/clusters/{cluster_id}/broker-count",
        true,
        Rpc::UpdateBrokerCount,
    ),
    route(
        "PUT",
        "/v1/clusters/{cluster_id}/tags",
        true,
        Rpc::UpdateTags,
    ),
    route(
        "PUT",
        "/v1/clusters/{cluster_id}/configuration",
        true,
        Rpc::UpdateClusterConfiguration,
    ),
    route(
        "GET",
        "/v1/clusters/{cluster_id}/operations",
        false,
        Rpc::ListOperations,
    ),
    route(
        "GET",
        "/v1/operations/{operation_id}",
        false,
        Rpc::GetOperation,
    ),
    route("GET", "/v1/hosts", false, Rpc::ListHosts),
    route("POST", "/v1/configurations", true, Rpc::CreateConfiguration),
    route("GET", "/v1/configurations", false, Rpc::ListConfigurations),
    route(
        "GET",
        "/v1/configurations/{configuration_id}",
        false,
        Rpc::GetConfiguration,
    ),
    // MSK: PUT /v1/configurations/{arn} creates the next revision.
    route(
        "PUT",
        "/v1/configurations/{configuration_id}",
        true,
        Rpc::UpdateConfiguration,
    ),
    route(
        "DELETE",
        "/v1/configurations/{configuration_id}",
        false,
        Rpc::DeleteConfiguration,
    ),
    route(
        "GET",
        "/v1/configurations/{configuration_id}/revisions",
        false,
        Rpc::ListConfigurationRevisions,
    ),
    route(
        "GET",
        "/v1/configurations/{configuration_id}/revisions/{revision}",
        false,
        Rpc::GetConfigurationRevision,
    ),
];

/// A value one call's response gives a path field of another call: an OpenAPI link, so that
/// clients and fuzzers (schemathesis' stateful phase) can follow a created cluster to the
/// calls about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The call whose 200 response holds the value.
    pub from: Rpc,
    /// Where, as a JSON pointer into the response body (`/cluster/id`).
    pub pointer: &'static str,
    /// The call that takes it.
    pub to: Rpc,
    /// The path field it fills.
    pub field: &'static str,
}

/// Every link between routes.
pub const LINKS: &[Link] = &[
    link(
        Rpc::CreateCluster,
        "/cluster/id",
        Rpc::GetCluster,
        "cluster_id",
    ),
    link(
        Rpc::CreateCluster,
        "/cluster/id",
        Rpc::DeleteCluster,
        "cluster_id",
    ),
    link(
        Rpc::CreateCluster,
        "/cluster/id",
        Rpc::GetBootstrapBrokers,
        "cluster_id",
    ),
    link(
        Rpc::CreateCluster,
        "/cluster/id",
        Rpc::ListNodes,
        "cluster_id",
    ),
    link(
        Rpc::CreateCluster,
        "/cluster/id",
        Rpc::ListOperations,
        "cluster_id",
    ),
    link(
        Rpc::CreateCluster,
        "/operation/id",
        Rpc::GetOperation,
        "operation_id",
    ),
    link(
        Rpc::UpdateBrokerCount,
        "/operation/id",
        Rpc::GetOperation,
        "operation_id",
    ),
    link(
        Rpc::UpdateClusterConfiguration,
        "/operation/id",
        Rpc::GetOperation,
        "operation_id",
    ),
    link(
        Rpc::CreateConfiguration,
        "/id",
        Rpc::GetConfiguration,
        "configuration_id",
    ),
    link(
        Rpc::CreateConfiguration,
        "/id",
        Rpc::ListConfigurationRevisions,
        "configuration_id",
    ),
    link(
        Rpc::DeleteCluster,
        "/operation/id",
        Rpc::GetOperation,
        "operation_id",
    ),
    link(
        Rpc::ListOperations,
        "/operations/0/id",
        Rpc::GetOperation,
        "operation_id",
    ),
];

/// A [`Link`], for the table.
const fn link(from: Rpc, pointer: &'static str, to: Rpc, field: &'static str) -> Link {
    Link {
        from,
        pointer,
        to,
        field,
    }
}

/// A [`Route`], for the table.
const fn route(method: &'static str, path: &'static str, body: bool, rpc: Rpc) -> Route {
    Route {
        method,
        path,
        body,
        rpc,
    }
}

impl Route {
    /// The names of the fields the path binds, in order (`["cluster_id"]`).
    pub fn path_params(&self) -> impl Iterator<Item = &'static str> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }

    /// The path's values for its fields if `path` matches the template, percent-decoded.
    /// `Err` for a matching path whose segment does not decode to UTF-8.
    fn bind(&self, path: &str) -> Option<Result<Vec<(&'static str, String)>, String>> {
        let template: Vec<&str> = self.path.split('/').collect();
        let actual: Vec<&str> = path.split('/').collect();
        if template.len() != actual.len() {
            return None;
        }
        let mut params = Vec::new();
        for (t, a) in template.iter().zip(&actual) {
            match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                Some(field) if !a.is_empty() => params.push((field, *a)),
                Some(_) => return None,
                None if t == a => {}
                None => return None,
            }
        }
        let decoded = params
            .into_iter()
            .map(|(field, raw)| Ok((field, percent_decode(raw)?)))
            .collect();
        Some(decoded)
    }
}

/// What the table says about a request's method and path.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// A route, with the path's field values.
    Route(&'static Route, Vec<(&'static str, String)>),
    /// The path matches routes, none with this method; the methods that are allowed.
    MethodNotAllowed(Vec<&'static str>),
    /// No route has this path.
    NotFound,
    /// A route's path matches but a segment is not valid percent-encoded UTF-8.
    BadPath(String),
}

/// The route for `method` and `path`.
pub fn find(method: &Method, path: &str) -> Found {
    let mut allowed = Vec::new();
    for route in ROUTES {
        match route.bind(path) {
            None => continue,
            Some(Err(err)) => return Found::BadPath(err),
            Some(Ok(params)) if route.method == method.as_str() => {
                return Found::Route(route, params);
            }
            Some(Ok(_)) => allowed.push(route.method),
        }
    }
    if allowed.is_empty() {
        Found::NotFound
    } else {
        Found::MethodNotAllowed(allowed)
    }
}

/// The `name=value` pairs of a query string (`application/x-www-form-urlencoded`: `+` is a
/// space, `%XX` a byte), decoded. An empty pair (`a=1&&b=2`) is skipped.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_decode(&s.replace('+', " "));
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// `s` with every `%XX` replaced by its byte; the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("`{s}` has a malformed percent-encoding"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}` does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_bind_their_fields() {
        let Found::Route(route, params) = find(&Method::GET, "/v1/clusters/cl-1%2Fx/nodes") else {
            panic!("a route")
        };
        assert_eq!(route.rpc, Rpc::ListNodes);
        assert_eq!(params, vec![("cluster_id", "cl-1/x".to_string())]);
        let Found::Route(route, _) = find(&Method::DELETE, "/v1/clusters/cl-1") else {
            panic!("a route")
        };
        assert_eq!(route.rpc, Rpc::DeleteCluster);
    }

    #[test]
    fn unknown_paths_and_methods_are_told_apart() {
        assert_eq!(find(&Method::GET, "/v1/nope"), Found::NotFound);
        assert_eq!(find(&Method::GET, "/v1/clusters/"), Found::NotFound);
        assert_eq!(find(&Method::GET, "/v1/clusters//nodes"), Found::NotFound);
        assert_eq!(
            find(&Method::PUT, "/v1/clusters/x"),
            Found::MethodNotAllowed(vec!["GET", "DELETE"])
        );
        assert!(matches!(
            find(&Method::GET, "/v1/clusters/%ff"),
            Found::BadPath(_)
        ));
    }

    #[test]
    fn queries_decode() {
        assert_eq!(
            parse_query("namePrefix=a+b%21&&pageSize=2&x").unwrap(),
            vec![
                ("namePrefix".into(), "a b!".into()),
                ("pageSize".into(), "2".into()),
                ("x".into(), String::new())
            ]
        );
        assert!(parse_query("a=%2").is_err());
        assert!(parse_query("a=%zz").is_err());
    }

    #[test]
    fn links_join_routes_that_exist_by_a_path_field() {
        for link in LINKS {
            assert!(ROUTES.iter().any(|r| r.rpc == link.from), "{link:?}");
            let to = ROUTES.iter().find(|r| r.rpc == link.to).expect("a route");
            assert!(to.path_params().any(|p| p == link.field), "{link:?}");
        }
    }

    #[test]
    fn every_route_is_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    (a.method, a.path) != (b.method, b.path),
                    "{} {}",
                    a.method,
                    a.path
                );
            }
        }
    }
}
