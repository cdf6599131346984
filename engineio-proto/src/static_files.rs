//! Static file rules (python-engineio's `static_files`): URL path in, file path and
//! content type out, with no way to escape the configured folders.
//!
//! This module is pure logic; the bindings read the files. They also check, after
//! resolving symbolic links, that the file is still inside its folder
//! ([`Resolved::root`]), because only the file system knows where a link points.

use std::path::{Component, Path, PathBuf};

use crate::exchange::Response;
use crate::server::request::percent_decode_path;

/// A set of static file rules.
///
/// ```
/// use std::path::Path;
/// use engineio_proto::static_files::StaticFiles;
///
/// let files = StaticFiles::new()
///     .file("/", "demo/index.html")
///     .dir("/static/", "demo/assets")
///     .file_with_type("/data", "demo/data.bin", "application/x-demo");
///
/// let r = files.resolve("/").unwrap();
/// assert_eq!(r.path, Path::new("demo/index.html"));
/// assert_eq!(r.content_type, "text/html; charset=utf-8");
///
/// let r = files.resolve("/static/js/app.js").unwrap();
/// assert_eq!(r.path, Path::new("demo/assets/js/app.js"));
/// assert_eq!(r.content_type, "text/javascript; charset=utf-8");
///
/// // A folder URL gets the default file.
/// assert_eq!(files.resolve("/static/").unwrap().path, Path::new("demo/assets/index.html"));
/// // No way out of the folder, encoded or not.
/// assert!(files.resolve("/static/../secret").is_none());
/// assert!(files.resolve("/static/%2e%2e/secret").is_none());
/// assert!(files.resolve("/nothing-here").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct StaticFiles {
    rules: Vec<Rule>,
    default_file: String,
    /// The content type of the default file, when it is not implied by its name.
    default_type: Option<String>,
}

#[derive(Debug, Clone)]
enum Rule {
    File {
        url: String,
        path: PathBuf,
        content_type: Option<String>,
    },
    Dir {
        prefix: String,
        path: PathBuf,
        content_type: Option<String>,
    },
}

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The file to read.
    pub path: PathBuf,
    /// Its `Content-Type`.
    pub content_type: String,
    /// For a folder rule, the folder: after resolving symbolic links, the file must still
    /// be inside it (see [`is_inside`]).
    pub root: Option<PathBuf>,
}

impl Resolved {
    /// The answer serving the file: `200` with its content type and `no-cache` (as
    /// python-engineio), the contents unless the request was a `HEAD`.
    pub fn response(&self, method: &http::Method, contents: bytes::Bytes) -> Response {
        let mut headers = http::HeaderMap::with_capacity(2);
        if let Ok(ct) = http::HeaderValue::from_str(&self.content_type) {
            headers.insert(http::header::CONTENT_TYPE, ct);
        }
        headers.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-cache"),
        );
        Response {
            status: http::StatusCode::OK,
            headers,
            body: if method == http::Method::HEAD {
                bytes::Bytes::new()
            } else {
                contents
            },
        }
    }
}

/// The answer for a path that is neither Engine.IO nor a file that can be served:
/// `404 Not Found`.
pub fn not_found() -> Response {
    Response::new(
        http::StatusCode::NOT_FOUND,
        crate::exchange::TEXT_PLAIN,
        bytes::Bytes::from_static(b"Not Found"),
    )
}

impl Default for StaticFiles {
    fn default() -> Self {
        StaticFiles::new()
    }
}

impl StaticFiles {
    /// No rules; the default file for folder URLs is `index.html`.
    pub fn new() -> Self {
        StaticFiles {
            rules: Vec::new(),
            default_file: "index.html".to_owned(),
            default_type: None,
        }
    }

    /// Serves `path` at exactly `url`, with the content type its extension implies.
    pub fn file(mut self, url: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        self.rules.push(Rule::File {
            url: url.into(),
            path: path.into(),
            content_type: None,
        });
        self
    }

    /// Serves `path` at exactly `url` with an explicit content type.
    pub fn file_with_type(
        mut self,
        url: impl Into<String>,
        path: impl Into<PathBuf>,
        content_type: impl Into<String>,
    ) -> Self {
        self.rules.push(Rule::File {
            url: url.into(),
            path: path.into(),
            content_type: Some(content_type.into()),
        });
        self
    }

    /// Serves the folder `path` under the URL prefix `prefix` (which should end with `/`).
    /// URLs ending in `/` get the default file.
    pub fn dir(self, prefix: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        self.push_dir(prefix.into(), path.into(), None)
    }

    /// Serves the folder `path` under `prefix`, every file with `content_type`
    /// (python-engineio's `{'/static': {'filename': 'public/', 'content_type': ...}}`).
    pub fn dir_with_type(
        self,
        prefix: impl Into<String>,
        path: impl Into<PathBuf>,
        content_type: impl Into<String>,
    ) -> Self {
        self.push_dir(prefix.into(), path.into(), Some(content_type.into()))
    }

    fn push_dir(mut self, mut prefix: String, path: PathBuf, content_type: Option<String>) -> Self {
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        self.rules.push(Rule::Dir {
            prefix,
            path,
            content_type,
        });
        self
    }

    /// The file served for folder URLs (default `index.html`; python-engineio's `''`
    /// key), with the content type its name implies.
    pub fn default_file(mut self, name: impl Into<String>) -> Self {
        self.default_file = name.into();
        self.default_type = None;
        self
    }

    /// The file served for folder URLs with an explicit content type (python-engineio's
    /// `'': {'filename': ..., 'content_type': ...}`).
    ///
    /// ```
    /// use std::path::Path;
    /// use engineio_proto::static_files::StaticFiles;
    ///
    /// let files = StaticFiles::new()
    ///     .dir("/static", "public")
    ///     .default_file_with_type("image.gif", "text/plain");
    /// let r = files.resolve("/static/").unwrap();
    /// assert_eq!(r.path, Path::new("public/image.gif"));
    /// assert_eq!(r.content_type, "text/plain");
    /// // Other files keep the type their name implies.
    /// assert_eq!(files.resolve("/static/a.css").unwrap().content_type, "text/css; charset=utf-8");
    /// ```
    pub fn default_file_with_type(
        mut self,
        name: impl Into<String>,
        content_type: impl Into<String>,
    ) -> Self {
        self.default_file = name.into();
        self.default_type = Some(content_type.into());
        self
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Resolves a URL path (no query). Exact file rules win; then the folder rule with the
    /// longest matching prefix. `None` when no rule matches or the path would leave its
    /// folder (`..`, encoded `%2e%2e`, backslashes, NUL, absolute components).
    pub fn resolve(&self, url_path: &str) -> Option<Resolved> {
        for rule in &self.rules {
            if let Rule::File {
                url,
                path,
                content_type,
            } = rule
                && url == url_path
            {
                return Some(Resolved {
                    content_type: content_type
                        .clone()
                        .unwrap_or_else(|| content_type_for(path).to_owned()),
                    path: path.clone(),
                    root: None,
                });
            }
        }
        let (prefix, root) = self
            .rules
            .iter()
            .filter_map(|r| match r {
                Rule::Dir {
                    prefix,
                    path,
                    content_type,
                } => {
                    let bare = prefix.trim_end_matches('/');
                    if url_path.starts_with(prefix.as_str()) || url_path == bare {
                        Some((prefix.as_str(), (path, content_type)))
                    } else {
                        None
                    }
                }
                Rule::File { .. } => None,
            })
            .max_by_key(|(prefix, _)| prefix.len())?;
        let (root, dir_type) = root;
        let rest = url_path.get(prefix.len()..).unwrap_or("");
        let decoded = percent_decode_path(rest)?;
        let mut path = root.clone();
        for segment in decoded.split('/') {
            if segment.is_empty() {
                continue;
            }
            if segment.contains('\\') || segment.contains('\0') {
                return None;
            }
            let mut comps = Path::new(segment).components();
            match (comps.next(), comps.next()) {
                (Some(Component::Normal(c)), None) => path.push(c),
                _ => return None,
            }
        }
        let folder = decoded.is_empty() || decoded.ends_with('/');
        if folder {
            path.push(&self.default_file);
        }
        let content_type = match (folder, &self.default_type, dir_type) {
            (true, Some(t), _) => t.clone(),
            (_, _, Some(t)) => t.clone(),
            _ => content_type_for(&path).to_owned(),
        };
        Some(Resolved {
            content_type,
            path,
            root: Some(root.clone()),
        })
    }
}

/// Whether `file` is inside `root`, both already canonical (symbolic links resolved).
pub fn is_inside(root: &Path, file: &Path) -> bool {
    file.starts_with(root)
}

/// The content type for a file name's extension, `application/octet-stream` when unknown.
pub fn content_type_for(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> StaticFiles {
        StaticFiles::new()
            .file("/", "www/index.html")
            .dir("/static", "www/static")
            .dir("/static/deep/", "elsewhere")
            .default_file("main.html")
    }

    #[test]
    fn traversal_is_refused_in_every_spelling() {
        let f = files();
        for url in [
            "/static/../x",
            "/static/a/../../x",
            "/static/..",
            "/static/%2e%2e/x",
            "/static/%2E%2E/x",
            "/static/.%2e/x",
            "/static/a%2f..%2f..%2fx",
            "/static/..%5cx",
            "/static/a\\..\\x",
            "/static/%00",
            "/static/./x",
            "/static/%zz",
        ] {
            assert_eq!(f.resolve(url), None, "{url}");
        }
    }

    #[test]
    fn longest_prefix_and_default_file() {
        let f = files();
        assert_eq!(
            f.resolve("/static/deep/x.css").unwrap().path,
            Path::new("elsewhere/x.css")
        );
        assert_eq!(
            f.resolve("/static").unwrap().path,
            Path::new("www/static/main.html")
        );
        assert_eq!(
            f.resolve("/static/sub/").unwrap().path,
            Path::new("www/static/sub/main.html")
        );
        assert_eq!(
            f.resolve("/static//a.txt").unwrap().path,
            Path::new("www/static/a.txt")
        );
        assert_eq!(
            f.resolve("/static/a%20b.png").unwrap(),
            Resolved {
                path: PathBuf::from("www/static/a b.png"),
                content_type: "image/png".into(),
                root: Some(PathBuf::from("www/static")),
            }
        );
        assert!(f.resolve("/staticx").is_none());
        assert!(f.resolve("/index.html").is_none());
    }

    #[test]
    fn python_engineio_content_type_rules() {
        // python-engineio's documented rules: a folder with one content type for all its
        // files, and a default file ('' key) with its own.
        let f = StaticFiles::new()
            .dir_with_type("/static", "public", "text/plain")
            .file_with_type("/", "latency.html", "text/plain")
            .default_file_with_type("image.gif", "image/gif");
        let r = f.resolve("/static/a.html").unwrap();
        assert_eq!(
            (r.path.as_path(), r.content_type.as_str()),
            (Path::new("public/a.html"), "text/plain")
        );
        let r = f.resolve("/static/").unwrap();
        assert_eq!(
            (r.path.as_path(), r.content_type.as_str()),
            (Path::new("public/image.gif"), "image/gif")
        );
        assert_eq!(f.resolve("/").unwrap().content_type, "text/plain");
        // Setting a default file by name alone forgets an earlier explicit type.
        let f = f.default_file("main.html");
        assert_eq!(f.resolve("/static/").unwrap().content_type, "text/plain");
        let f = StaticFiles::new().dir("/s", "p").default_file("main.html");
        assert_eq!(
            f.resolve("/s/").unwrap().content_type,
            "text/html; charset=utf-8"
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type_for(Path::new("a.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type_for(Path::new("a.bin")),
            "application/octet-stream"
        );
        assert_eq!(
            content_type_for(Path::new("noext")),
            "application/octet-stream"
        );
        assert!(is_inside(Path::new("/a/b"), Path::new("/a/b/c")));
        assert!(!is_inside(Path::new("/a/b"), Path::new("/a/bc")));
    }
}
