#![deny(warnings)]

use redis_locked::{LockError, redis_lock};

struct Account {
    id: u64,
    balance: i64,
}

impl Account {
    #[redis_lock(name = "account:{self}")]
    fn close(self) -> Result<i64, LockError> {
        Ok(self.balance)
    }

    #[redis_lock(name = "account:{id}", expire = 5)]
    fn balance(&self, id: u64) -> Result<i64, LockError> {
        assert_eq!(id, self.id);
        Ok(self.balance)
    }

    #[redis_lock(name = "account:{amount}")]
    fn deposit(&mut self, amount: i64) -> Result<i64, LockError> {
        self.balance += amount;
        Ok(self.balance)
    }

    #[redis_lock(name = "account")]
    fn boxed(self: Box<Self>) -> Result<u64, LockError> {
        Ok(self.id)
    }
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.id)
    }
}

fn main() {
    let _ = Account::close;
    let _ = Account::balance;
    let _ = Account::deposit;
    let _ = Account::boxed;
}
