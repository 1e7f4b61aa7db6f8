//! For tests of what a child process sees after `fork()`: runs a function in a forked
//! child and hands its output to the parent.

/// Runs `in_child` in a child forked from this process and returns the child's process id
/// and what `in_child` returned (at most 256 bytes of it). The child does nothing else
/// and exits at once.
pub(crate) fn output_of_forked_child(in_child: impl FnOnce() -> String) -> (i32, String) {
    let mut pipe = [0; 2];
    // SAFETY: plain libc calls; the child only runs `in_child`, writes its output and
    // exits without running anything of the parent's (destructors, atexit handlers).
    unsafe {
        assert_eq!(libc::pipe(pipe.as_mut_ptr()), 0, "pipe");
        match libc::fork() {
            -1 => panic!("fork failed"),
            0 => {
                let output = in_child();
                libc::write(pipe[1], output.as_ptr().cast(), output.len());
                libc::_exit(0);
            }
            child => {
                libc::close(pipe[1]);
                let mut buf = [0u8; 256];
                let n = libc::read(pipe[0], buf.as_mut_ptr().cast(), buf.len());
                libc::waitpid(child, std::ptr::null_mut(), 0);
                libc::close(pipe[0]);
                let output = String::from_utf8_lossy(&buf[..n.max(0) as usize]).into_owned();
                (child, output)
            }
        }
    }
}
