#![deny(warnings)]

// Placeholders reach into parameters (`{req.id}`, `{order.customer.id}`, `{pair.0}`) and
// name what destructuring patterns bind (`Path(id)`, `(a, b)`, `Order { id, .. }`).

use redis_locked::{LockError, redis_lock};

struct Request {
    id: u64,
}

struct Customer {
    id: u32,
}

struct Order {
    id: u64,
    customer: Customer,
}

struct Path<T>(T);

struct Job {
    id: u64,
}

#[redis_lock(name = "request:{req.id}")]
fn by_field(req: &Request) -> Result<u64, LockError> {
    Ok(req.id)
}

#[redis_lock(name = "customer:{order.customer.id}:{order.id:08}")]
async fn nested_fields(order: Order) -> Result<u64, LockError> {
    Ok(order.id)
}

#[redis_lock(name = "pair:{pair.0}:{pair.1.0}")]
fn tuple_fields(pair: (u8, (u16, u32))) -> Result<u8, LockError> {
    Ok(pair.0)
}

#[redis_lock(name = "path:{id}")]
async fn tuple_struct_pattern(Path(id): Path<u64>) -> Result<u64, LockError> {
    Ok(id)
}

#[redis_lock(name = "range:{a}-{b}")]
fn tuple_pattern((a, b): (u64, u64)) -> Result<u64, LockError> {
    Ok(a + b)
}

#[redis_lock(name = "order:{id}")]
fn struct_pattern(Order { id, .. }: Order) -> Result<u64, LockError> {
    Ok(id)
}

impl Job {
    #[redis_lock(name = "job:{self.id}")]
    fn run(&self) -> Result<u64, LockError> {
        Ok(self.id)
    }

    #[redis_lock(name = "job:{self.id}")]
    async fn run_async(self) -> Result<u64, LockError> {
        Ok(self.id)
    }
}

fn main() {
    let _ = by_field;
    let _ = nested_fields(Order {
        id: 1,
        customer: Customer { id: 2 },
    });
    let _ = tuple_fields;
    let _ = tuple_struct_pattern(Path(1));
    let _ = tuple_pattern;
    let _ = struct_pattern;
    let _ = Job::run;
    let _ = Job { id: 1 }.run_async();
}
