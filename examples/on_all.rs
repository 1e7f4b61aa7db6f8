//! One command on several blocking connections at once from one thread, as the hand-written
//! sync Redlock loops of the bench and `uncontended_profile` send it: every request
//! written, then every reply read in turn, so the servers' round trips overlap without a
//! thread per server.

/// `cmd` on every connection: all the requests written, then the replies read in turn.
pub fn on_all_sync(
    conns: &mut [redis::Connection],
    cmd: &redis::Cmd,
) -> redis::RedisResult<Vec<redis::Value>> {
    let packed = cmd.get_packed_command();
    for conn in conns.iter_mut() {
        conn.send_packed_command(&packed)?;
    }
    conns.iter_mut().map(|conn| conn.recv_response()).collect()
}
