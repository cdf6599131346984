//! Node ids and routable session ids, for servers that run as several nodes.
//!
//! A sid issued by a node of a cluster names that node:
//!
//! ```text
//! <node id>.<20 characters of URL-safe base64: 120 random bits>
//! web-1.Xq3b9aGk2LpZ0vYt7cQw
//! ```
//!
//! The node id is 1 to [`NodeId::MAX_LEN`] characters of `a-z`, `0-9` and `-` (not at
//! either end), so a sid stays within [`Sid::MAX_LEN`], needs no escaping in a URL, a
//! cookie or a log line, and a load balancer can route on it with a regular expression
//! (`^([a-z0-9-]+)\.`). The random part has the same 120 bits as a sid of a single
//! server. Clients treat the sid as an opaque string: Node's `engine.io-client`,
//! python-engineio and ours accept it as it is.

use std::fmt;
use std::str::FromStr;

use crate::Sid;

/// The name of one server process in a cluster: 1 to [`NodeId::MAX_LEN`] characters of
/// `a-z`, `0-9` and `-`, with no `-` at either end (a DNS label, shortened).
///
/// ```
/// use engineio_proto::{NodeId, Sid};
///
/// let node: NodeId = "web-1".parse()?;
/// let sid = Sid::routable(&node, [7; 15]);
/// assert_eq!(sid.as_str(), "web-1.BwcHBwcHBwcHBwcHBwcH");
/// assert_eq!(sid.node(), Some("web-1"));
/// assert!("Web_1".parse::<NodeId>().is_err());
/// # Ok::<(), engineio_proto::InvalidNodeId>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(Box<str>);

/// A string could not be used as a [`NodeId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidNodeId {
    /// The id was empty.
    #[error("node id is empty")]
    Empty,
    /// The id was longer than [`NodeId::MAX_LEN`].
    #[error(
        "node id {id:?} is {len} characters long; at most {} are allowed",
        NodeId::MAX_LEN
    )]
    TooLong {
        /// The id given.
        id: String,
        /// Its length.
        len: usize,
    },
    /// The id held a character other than `a-z`, `0-9` and `-`, or began or ended with `-`.
    #[error(
        "node id {id:?} may only hold a-z, 0-9 and '-' (not at either end), for example \"web-1\""
    )]
    InvalidCharacter {
        /// The id given.
        id: String,
    },
}

impl NodeId {
    /// The longest node id: a routable sid (`node.` + 20 characters) then fits in
    /// [`Sid::MAX_LEN`] bytes.
    pub const MAX_LEN: usize = 24;

    /// Checks a node id.
    pub fn new(id: &str) -> Result<NodeId, InvalidNodeId> {
        if id.is_empty() {
            return Err(InvalidNodeId::Empty);
        }
        if id.len() > NodeId::MAX_LEN {
            return Err(InvalidNodeId::TooLong {
                id: id.to_owned(),
                len: id.len(),
            });
        }
        let ok = id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !id.starts_with('-')
            && !id.ends_with('-');
        if !ok {
            return Err(InvalidNodeId::InvalidCharacter { id: id.to_owned() });
        }
        Ok(NodeId(id.into()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.as_str())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NodeId {
    type Err = InvalidNodeId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeId::new(s)
    }
}

impl std::borrow::Borrow<str> for NodeId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for NodeId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Sid {
    /// A sid that names its node: `<node>.` followed by the 20 characters
    /// [`Sid::from_entropy`] makes of 15 random bytes (120 bits). The bytes must come from
    /// a cryptographically secure source.
    pub fn routable(node: &NodeId, entropy: [u8; 15]) -> Sid {
        let random = Sid::from_entropy(entropy);
        let mut text = String::with_capacity(Sid::MAX_LEN);
        text.push_str(node.as_str());
        text.push('.');
        text.push_str(random.as_str());
        // Cannot fail: both parts are visible ASCII and 24 + 1 + 20 bytes fit in MAX_LEN.
        Sid::new(&text).unwrap_or(random)
    }

    /// The node a routable sid names (the part before the first `.`), if it is a valid
    /// [`NodeId`]; `None` for sids of a single server (and of Node or python-engineio).
    pub fn node(&self) -> Option<&str> {
        let (node, rest) = self.as_str().split_once('.')?;
        (!rest.is_empty() && NodeId::new(node).is_ok()).then_some(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_validated() {
        for ok in ["a", "web-1", "0", "node-b-2", &"x".repeat(24)] {
            assert_eq!(NodeId::new(ok).unwrap().as_str(), ok);
        }
        assert_eq!(NodeId::new(""), Err(InvalidNodeId::Empty));
        assert!(matches!(
            NodeId::new(&"x".repeat(25)),
            Err(InvalidNodeId::TooLong { len: 25, .. })
        ));
        for bad in ["-a", "a-", "A", "a.b", "a_b", "a b", "é"] {
            assert!(
                matches!(
                    NodeId::new(bad),
                    Err(InvalidNodeId::InvalidCharacter { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn routable_sids_name_their_node_and_keep_120_bits() {
        let longest = NodeId::new(&"z".repeat(NodeId::MAX_LEN)).unwrap();
        for node in [NodeId::new("a").unwrap(), longest] {
            let a = Sid::routable(&node, [1; 15]);
            let b = Sid::routable(&node, [2; 15]);
            assert_ne!(a, b);
            assert_eq!(a.node(), Some(node.as_str()));
            assert_eq!(a.as_str().len(), node.as_str().len() + 1 + 20);
            assert!(a.as_str().len() <= Sid::MAX_LEN);
            let random = a.as_str().split_once('.').unwrap().1;
            assert_eq!(random, Sid::from_entropy([1; 15]).as_str());
            assert_eq!(Sid::new(a.as_str()).unwrap(), a);
        }
    }

    #[test]
    fn plain_sids_name_no_node() {
        assert_eq!(Sid::from_entropy([9; 15]).node(), None);
        assert_eq!(Sid::new("abc").unwrap().node(), None);
        assert_eq!(Sid::new("Web.x").unwrap().node(), None);
        assert_eq!(Sid::new("web.").unwrap().node(), None);
        assert_eq!(Sid::new("web.x").unwrap().node(), Some("web"));
    }
}
