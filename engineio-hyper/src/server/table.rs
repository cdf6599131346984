//! The sid → session table, sharded so that concurrent lookups rarely share a lock.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Mutex;

use std::time::Instant;

use engineio_proto::Sid;
use engineio_proto::server::{EndedSession, SessionRequest};

use super::socket::Socket;

const SHARDS: usize = 32;

/// A fast multiplicative hash (FxHash's) for session ids. A keyed hash such as SipHash
/// guards a table against keys chosen to collide; here every key is inserted by the
/// server itself (ids from its generator), so clients can only look up, never plant
/// colliding keys, and the cheap hash is safe.
#[derive(Default, Clone, Copy)]
pub(crate) struct SidHasher(u64);

impl Hasher for SidHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in chunks.by_ref() {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.write(&n.to_le_bytes());
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type BuildSidHasher = BuildHasherDefault<SidHasher>;

/// A session in the table: live (driven by its task), or only the record of how it ended
/// (its task, sockets and buffers gone), kept until it expires to judge late requests.
enum Entry<D> {
    Live(Socket<D>),
    /// Boxed: the map's buckets stay the size of a live entry (a handle), so the
    /// records of a burst of ended sessions cost their own size, not the map's.
    Ended(Box<EndedSession>),
}

struct Shard<D> {
    map: HashMap<Sid, Entry<D>, BuildSidHasher>,
    /// Ended records by expiry (records are added in about that order: each expires a
    /// fixed time after its session ended).
    expiry: VecDeque<(Instant, Sid)>,
}

impl<D> Shard<D> {
    /// Forgets the ended records that have expired (checked on every change of the
    /// shard: no task sweeps the table).
    fn purge(&mut self, now: Instant) {
        while let Some(&(at, sid)) = self.expiry.front() {
            if at > now {
                break;
            }
            self.expiry.pop_front();
            if matches!(self.map.get(&sid), Some(Entry::Ended(e)) if e.expires_at() <= now) {
                self.map.remove(&sid);
            }
        }
        if self.expiry.is_empty() && self.expiry.capacity() > 64 {
            self.expiry.shrink_to_fit();
        }
        // A burst of sessions leaves the map at its peak capacity: give most of it back
        // once it is mostly empty (halving at a quarter keeps shrinking amortised).
        if self.map.capacity() > 64 && self.map.len() < self.map.capacity() / 4 {
            self.map.shrink_to(self.map.len() * 2);
        }
    }
}

pub(crate) struct SessionTable<D> {
    hasher: BuildSidHasher,
    shards: [Mutex<Shard<D>>; SHARDS],
}

impl<D> Default for SessionTable<D> {
    fn default() -> Self {
        SessionTable {
            hasher: Default::default(),
            shards: std::array::from_fn(|_| {
                Mutex::new(Shard {
                    map: HashMap::default(),
                    expiry: VecDeque::new(),
                })
            }),
        }
    }
}

impl<D> SessionTable<D> {
    fn shard(&self, sid: Sid) -> std::sync::MutexGuard<'_, Shard<D>> {
        // The high bits choose the shard; the map inside uses the whole hash.
        let i = (self.hasher.hash_one(sid) >> 59) as usize % SHARDS;
        let shard = self.shards.get(i).unwrap_or(&self.shards[0]);
        shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn insert(&self, now: Instant, socket: Socket<D>) {
        let mut shard = self.shard(socket.sid());
        shard.purge(now);
        shard.map.insert(socket.sid(), Entry::Live(socket));
    }

    /// The live session with this id.
    pub(crate) fn get(&self, sid: Sid) -> Option<Socket<D>> {
        match self.shard(sid).map.get(&sid) {
            Some(Entry::Live(socket)) => Some(socket.clone()),
            _ => None,
        }
    }

    /// Whether this node knows the session (live, or ended and not expired yet).
    pub(crate) fn knows(&self, now: Instant, sid: Sid) -> bool {
        match self.shard(sid).map.get(&sid) {
            Some(Entry::Live(_)) => true,
            Some(Entry::Ended(e)) => e.expires_at() > now,
            None => false,
        }
    }

    /// The answer of an ended session's record to `request`, if there is one that has not
    /// expired.
    pub(crate) fn answer_ended(
        &self,
        now: Instant,
        request: &SessionRequest,
    ) -> Option<engineio_proto::Response> {
        let mut shard = self.shard(request.sid());
        shard.purge(now);
        match shard.map.get_mut(&request.sid()) {
            Some(Entry::Ended(ended)) if ended.expires_at() > now => Some(ended.answer(request)),
            _ => None,
        }
    }

    /// Replaces a live session by the record of how it ended.
    pub(crate) fn retire(&self, now: Instant, ended: EndedSession) {
        let sid = ended.sid();
        let mut shard = self.shard(sid);
        shard.purge(now);
        shard.expiry.push_back((ended.expires_at(), sid));
        shard.map.insert(sid, Entry::Ended(Box::new(ended)));
    }

    pub(crate) fn remove(&self, sid: Sid) {
        self.shard(sid).map.remove(&sid);
    }

    /// Every live session.
    pub(crate) fn all(&self) -> Vec<Socket<D>> {
        self.shards
            .iter()
            .flat_map(|s| {
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .map
                    .values()
                    .filter_map(|e| match e {
                        Entry::Live(socket) => Some(socket.clone()),
                        Entry::Ended(_) => None,
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}
