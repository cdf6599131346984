//! The sid → session table, sharded so that concurrent lookups rarely share a lock.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Mutex;

use engineio_proto::Sid;

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

pub(crate) struct SessionTable<D> {
    hasher: BuildSidHasher,
    shards: [Mutex<HashMap<Sid, Socket<D>, BuildSidHasher>>; SHARDS],
}

impl<D> Default for SessionTable<D> {
    fn default() -> Self {
        SessionTable {
            hasher: Default::default(),
            shards: std::array::from_fn(|_| Mutex::new(HashMap::default())),
        }
    }
}

impl<D> SessionTable<D> {
    fn shard(
        &self,
        sid: Sid,
    ) -> std::sync::MutexGuard<'_, HashMap<Sid, Socket<D>, BuildSidHasher>> {
        // The high bits choose the shard; the map inside uses the whole hash.
        let i = (self.hasher.hash_one(sid) >> 59) as usize % SHARDS;
        let shard = self.shards.get(i).unwrap_or(&self.shards[0]);
        shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn insert(&self, socket: Socket<D>) {
        self.shard(socket.sid()).insert(socket.sid(), socket);
    }

    pub(crate) fn get(&self, sid: Sid) -> Option<Socket<D>> {
        self.shard(sid).get(&sid).cloned()
    }

    pub(crate) fn remove(&self, sid: Sid) {
        self.shard(sid).remove(&sid);
    }

    pub(crate) fn all(&self) -> Vec<Socket<D>> {
        self.shards
            .iter()
            .flat_map(|s| {
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}
