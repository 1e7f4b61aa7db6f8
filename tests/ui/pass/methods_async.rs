#![deny(warnings)]

use redis_locked::{LockError, redis_lock};

struct Account {
    id: u64,
    balance: i64,
    label: String,
}

impl Account {
    #[redis_lock(name = "account:{self}")]
    async fn close(self) -> Result<i64, LockError> {
        Ok(self.balance)
    }

    #[redis_lock(name = "account:{self}", expire = 5)]
    async fn balance(&self) -> Result<i64, LockError> {
        Ok(self.balance)
    }

    #[redis_lock(name = "account:{id}")]
    async fn deposit(&mut self, id: u64, amount: i64) -> Result<i64, LockError> {
        assert_eq!(id, self.id);
        self.balance += amount;
        tokio::task::yield_now().await;
        Ok(self.balance)
    }

    // The result borrows from `self`: the body's block keeps the signature's lifetimes.
    #[redis_lock(name = "account:{prefix}")]
    async fn label(&self, prefix: &str) -> Result<&str, LockError> {
        Ok(self.label.strip_prefix(prefix).unwrap_or(&self.label))
    }
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.id)
    }
}

fn main() {
    let mut account = Account {
        id: 1,
        balance: 0,
        label: String::new(),
    };
    let _ = account.balance();
    let _ = account.label("none");
    let _ = account.deposit(1, 10);
    let _ = account.close();
}
