//! The sid → session table, sharded so that concurrent lookups rarely share a lock.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

use engineio_proto::Sid;

use super::socket::Socket;

const SHARDS: usize = 32;

pub(crate) struct SessionTable<D> {
    hasher: std::collections::hash_map::RandomState,
    shards: [Mutex<HashMap<Sid, Socket<D>>>; SHARDS],
}

impl<D> Default for SessionTable<D> {
    fn default() -> Self {
        SessionTable {
            hasher: Default::default(),
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }
}

impl<D> SessionTable<D> {
    fn shard(&self, sid: Sid) -> std::sync::MutexGuard<'_, HashMap<Sid, Socket<D>>> {
        let i = (self.hasher.hash_one(sid) as usize) % SHARDS;
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

    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
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
