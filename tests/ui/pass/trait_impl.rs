#![deny(warnings)]

use redis_locked::{LockError, redis_lock};

trait Store {
    fn save(&mut self, key: &str) -> Result<usize, LockError>;
    async fn load(&self, key: &str) -> Result<usize, LockError>;
}

struct Memory {
    keys: Vec<String>,
}

impl Store for Memory {
    #[redis_lock(name = "store:{key}")]
    fn save(&mut self, key: &str) -> Result<usize, LockError> {
        self.keys.push(key.to_owned());
        Ok(self.keys.len())
    }

    #[redis_lock(name = "store:{key}", timeout = 1)]
    async fn load(&self, key: &str) -> Result<usize, LockError> {
        Ok(self.keys.iter().filter(|k| *k == key).count())
    }
}

trait Defaulted {
    #[redis_lock(name = "defaulted")]
    fn provided(&self) -> Result<(), LockError> {
        Ok(())
    }
}

impl Defaulted for Memory {}

fn main() {
    let memory = Memory { keys: Vec::new() };
    let _ = memory.load("a");
    let _ = <Memory as Store>::save;
    let _ = <Memory as Defaulted>::provided;
}
