/*
 * test-subprocess.c - subprocess_exec / subprocess_shell: output on both
 * pipes (10 MB each at once), stdin, exit codes and signals as asyncio
 * reports them, kill / terminate / send_signal, stdio modes, env and cwd,
 * asyncio's callback order, spawn errors at spawn time, and no zombies (also
 * for children of a loop closed before their exit was seen).
 */
#include "test.h"
#include "helpers.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }
static pid_t loop_tid;

/* ---- a recording protocol --------------------------------------------------- */

struct proc {
  aloop_subprocess_t *p;
  char log[512];      /* "M" made, "1"/"2" data, "a".."c" pipe 0..2 lost,
                         "X" exited, "L" lost (data letters collapsed) */
  unsigned char *out, *err;
  size_t out_len, err_len, out_cap, err_cap;
  int made, exited, lost, frees, lost_err;
  int pipe_lost[3], pipe_err[3];
  int code_at_exit, has_code_at_exit, code_at_lost;
  int pauses, resumes;
  int signal_when_ready; /* send this signal once stdout has "ready" */
  int close_in_made;
};

static void logc(struct proc *s, char c) {
  size_t n = strlen(s->log);
  if (n > 0 && s->log[n - 1] == c && (c == '1' || c == '2'))
    return;
  if (n + 1 < sizeof s->log) {
    s->log[n] = c;
    s->log[n + 1] = 0;
  }
}

static void on_loop(const char *what) {
  if (gettid_() != loop_tid)
    FAIL("%s ran off the loop thread", what);
}

static void c_made(aloop_subprocess_t *p, void *ud) {
  struct proc *s = ud;
  on_loop("connection_made");
  if (s->made || s->log[0])
    FAIL("connection_made not first: %s", s->log);
  s->made++;
  s->p = p;
  logc(s, 'M');
  if (s->close_in_made)
    OK(aloop_subprocess_close(p));
}

static void c_data(aloop_subprocess_t *p, int fd, const char *data,
                   size_t len, void *ud) {
  struct proc *s = ud;
  on_loop("pipe_data_received");
  if (s->made != 1 || s->lost || p != s->p)
    FAIL("pipe_data_received out of order: %s", s->log);
  if (len == 0)
    FAIL("pipe_data_received with no data");
  if (fd == 1)
    buf_append(&s->out, &s->out_len, &s->out_cap, data, len);
  else if (fd == 2)
    buf_append(&s->err, &s->err_len, &s->err_cap, data, len);
  else
    FAIL("data on fd %d", fd);
  if (s->pipe_lost[fd])
    FAIL("data on fd %d after its pipe was lost", fd);
  logc(s, fd == 1 ? '1' : '2');
  if (s->signal_when_ready && fd == 1 && s->out_len >= 5 &&
      memmem(s->out, s->out_len, "ready", 5)) {
    OK(aloop_subprocess_send_signal(p, s->signal_when_ready));
    s->signal_when_ready = 0;
  }
}

static void c_pipe_lost(aloop_subprocess_t *p, int fd, int err, void *ud) {
  struct proc *s = ud;
  on_loop("pipe_connection_lost");
  if (s->made != 1 || s->lost || fd < 0 || fd > 2 || s->pipe_lost[fd])
    FAIL("pipe_connection_lost(%d) out of order: %s", fd, s->log);
  s->pipe_lost[fd] = 1;
  s->pipe_err[fd] = err;
  logc(s, (char)('a' + fd));
}

static void c_exited(aloop_subprocess_t *p, void *ud) {
  struct proc *s = ud;
  on_loop("process_exited");
  if (s->made != 1 || s->exited || s->lost)
    FAIL("process_exited out of order: %s", s->log);
  s->exited++;
  s->has_code_at_exit = aloop_subprocess_get_returncode(p, &s->code_at_exit);
  logc(s, 'X');
}

static void c_lost(aloop_subprocess_t *p, int err, void *ud) {
  struct proc *s = ud;
  on_loop("connection_lost");
  if (s->made != 1 || s->exited != 1 || s->lost)
    FAIL("connection_lost out of order: %s", s->log);
  for (int fd = 0; fd < 3; fd++) {
    aloop_transport_t *t = (aloop_transport_t *)1;
    OK(aloop_subprocess_get_pipe_transport(p, fd, &t));
    if (t != NULL)
      FAIL("connection_lost while pipe %d is open", fd);
  }
  s->lost++;
  s->lost_err = err;
  ASSERT_EQ(aloop_subprocess_get_returncode(p, &s->code_at_lost), 1);
  logc(s, 'L');
}

static void c_pause(aloop_subprocess_t *p, void *ud) { ((struct proc *)ud)->pauses++; }
static void c_resume(aloop_subprocess_t *p, void *ud) { ((struct proc *)ud)->resumes++; }

static void c_free(void *ud) {
  struct proc *s = ud;
  on_loop("free_cb");
  s->frees++;
}

static const aloop_subprocess_protocol_t proto = {
    sizeof(aloop_subprocess_protocol_t), c_made, c_data, c_pipe_lost,
    c_exited, c_lost, c_pause, c_resume};

static struct proc *proc_new(void) {
  struct proc *s = calloc(1, sizeof *s);
  ASSERT(s != NULL);
  return s;
}

/* Spawns argv and waits for the future; returns the subprocess. */
static aloop_subprocess_t *spawn(struct proc *s, const char *const *argv,
                                 const aloop_subprocess_options_t *o) {
  aloop_future_t *f = NULL;
  aloop_subprocess_t *p = NULL;
  loop_up();
  loop_tid = gettid_();
  OK(aloop_subprocess_exec(loop, argv, &proto, s, c_free, o, &f));
  RUN_UNTIL(aloop_future_done(f) == 1);
  OK(aloop_future_result_subprocess(f, &p));
  ASSERT(p != NULL);
  ASSERT_PTR_EQ(p, s->p); /* connection_made ran before the result */
  /* The generic getter gives the same handle. */
  void *r = NULL;
  OK(aloop_future_result(f, &r));
  ASSERT_PTR_EQ(r, p);
  OK(aloop_future_free(f));
  return p;
}

static void wait_lost(struct proc *s) { RUN_UNTIL(s->lost == 1); }

static int returncode_of(struct proc *s) {
  ASSERT_EQ(s->has_code_at_exit, 1);
  ASSERT_EQ(s->code_at_lost, s->code_at_exit);
  return s->code_at_exit;
}

/* pid is not our child any more, not even as a zombie. */
static int reaped(pid_t pid) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
         errno == ECHILD;
}

/* No child left at all (waitid(P_ALL) == ECHILD), polling up to 10 s. */
static void no_children_left(void) {
  double t0 = test_now();
  for (;;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
        errno == ECHILD)
      return;
    if (test_now() - t0 > 10.0)
      FAIL("a child is left (zombie pid %d)", (int)si.si_pid);
    test_sleep(0.005);
  }
}

static void close_loop(void) {
  OK(aloop_loop_close(loop));
  OK(aloop_loop_free(loop));
  loop = NULL;
}

/* ---- tests ------------------------------------------------------------------ */

TEST(exit_code_output_and_order) {
  struct proc *s = proc_new();
  const char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
  aloop_subprocess_t *p = spawn(s, argv, NULL);
  int pid = aloop_subprocess_get_pid(p);
  ASSERT_CMP(pid, >, 0);
  for (int fd = 0; fd < 3; fd++) {
    aloop_transport_t *t = NULL;
    OK(aloop_subprocess_get_pipe_transport(p, fd, &t));
    ASSERT(t != NULL);
  }
  aloop_transport_t *t;
  ASSERT_EQ(aloop_subprocess_get_pipe_transport(p, 3, &t), ALOOP_EINVAL);
  ASSERT_EQ(aloop_subprocess_is_closing(p), 0);
  wait_lost(s);
  ASSERT_EQ(returncode_of(s), 3);
  ASSERT_EQ(s->out_len, 4);
  ASSERT(memcmp(s->out, "out\n", 4) == 0);
  ASSERT_EQ(s->err_len, 4);
  ASSERT(memcmp(s->err, "err\n", 4) == 0);
  for (int fd = 0; fd < 3; fd++) {
    ASSERT_EQ(s->pipe_lost[fd], 1);
    ASSERT_EQ(s->pipe_err[fd], 0);
  }
  ASSERT_EQ(s->lost_err, 0);
  ASSERT_EQ(s->log[0], 'M');
  ASSERT_EQ(s->log[strlen(s->log) - 1], 'L');
  ASSERT_EQ(s->frees, 1);
  /* The handle is stale after connection_lost. */
  ASSERT_EQ(aloop_subprocess_get_pid(p), ALOOP_EBADF);
  ASSERT_EQ(aloop_subprocess_close(p), ALOOP_EBADF);
  ASSERT(reaped(pid));
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  close_loop();
}

TEST(shell_and_signal_returncode) {
  struct proc *s = proc_new();
  aloop_future_t *f;
  loop_up();
  loop_tid = gettid_();
  OK(aloop_subprocess_shell(loop, "kill -TERM $$", &proto, s, c_free, NULL, &f));
  OK(aloop_loop_run_until_complete(loop, f));
  OK(aloop_future_free(f));
  wait_lost(s);
  ASSERT_EQ(returncode_of(s), -SIGTERM);

  struct proc *s2 = proc_new();
  OK(aloop_subprocess_shell(loop, "exit 42", &proto, s2, c_free, NULL, &f));
  OK(aloop_loop_run_until_complete(loop, f));
  OK(aloop_future_free(f));
  wait_lost(s2);
  ASSERT_EQ(returncode_of(s2), 42);
  close_loop();
}

/* The child writes 10 MB to stdout and 10 MB to stderr at the same time. */
TEST(ten_mb_on_stdout_and_stderr) {
  enum { N = 10 * 1024 * 1024 };
  struct proc *s = proc_new();
  char cmd[256];
  snprintf(cmd, sizeof cmd,
           "(yes 0123456789 | head -c %d) & (yes abcdefghi | head -c %d >&2); "
           "wait",
           N, N);
  const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  aloop_subprocess_options_t o = {.size = sizeof o};
  o.stdin_mode = ALOOP_STDIO_DEVNULL;
  aloop_subprocess_t *p = spawn(s, argv, &o);
  aloop_transport_t *t = (aloop_transport_t *)1;
  OK(aloop_subprocess_get_pipe_transport(p, 0, &t));
  ASSERT_PTR_EQ(t, NULL); /* devnull stdin: no pipe */
  wait_lost(s);
  ASSERT_EQ(returncode_of(s), 0);
  ASSERT_EQ(s->out_len, N);
  ASSERT_EQ(s->err_len, N);
  for (size_t i = 0; i < N; i++) {
    if (s->out[i] != "0123456789\n"[i % 11])
      FAIL("stdout byte %zu is %d", i, s->out[i]);
    if (s->err[i] != "abcdefghi\n"[i % 10])
      FAIL("stderr byte %zu is %d", i, s->err[i]);
  }
  ASSERT_EQ(s->pipe_lost[0], 0);
  close_loop();
}

TEST(stdin_write_and_eof) {
  enum { N = 3 * 1024 * 1024 };
  struct proc *s = proc_new();
  const char *argv[] = {"cat", NULL};
  aloop_subprocess_options_t o = {.size = sizeof o};
  o.stderr_mode = ALOOP_STDIO_DEVNULL;
  aloop_subprocess_t *p = spawn(s, argv, &o);
  aloop_transport_t *in = NULL, *out = NULL;
  OK(aloop_subprocess_get_pipe_transport(p, 0, &in));
  OK(aloop_subprocess_get_pipe_transport(p, 1, &out));
  ASSERT(in != NULL && out != NULL && in != out);
  unsigned char *data = make_pattern(N);
  OK(aloop_transport_write(in, data, N));
  ASSERT_CMP(s->pauses, ==, 1); /* 3 MB buffered > the 64 KiB high mark */
  size_t buffered = 0;
  OK(aloop_transport_get_write_buffer_size(in, &buffered));
  ASSERT_CMP(buffered, >, 0);
  OK(aloop_transport_write_eof(in));
  /* Pausing the stdout transport stops pipe_data_received. */
  OK(aloop_transport_pause_reading(out));
  run_for(0.1);
  ASSERT_EQ(s->out_len, 0);
  OK(aloop_transport_resume_reading(out));
  wait_lost(s);
  ASSERT_EQ(returncode_of(s), 0);
  ASSERT_EQ(s->out_len, N);
  ASSERT(memcmp(s->out, data, N) == 0);
  ASSERT_EQ(s->resumes, s->pauses);
  ASSERT_EQ(s->pipe_err[0], 0);
  /* The pipe transport handles are stale once their pipes are lost. */
  ASSERT_EQ(aloop_transport_write(in, "x", 1), ALOOP_EBADF);
  free(data);
  close_loop();
}

TEST(kill_terminate_send_signal) {
  const char *sleeper[] = {"sleep", "30", NULL};
  struct {
    int how, want;
  } cases[] = {{0, -SIGTERM}, {1, -SIGKILL}, {2, -SIGINT}};
  for (int i = 0; i < 3; i++) {
    struct proc *s = proc_new();
    aloop_subprocess_t *p = spawn(s, sleeper, NULL);
    int code = 12345;
    ASSERT_EQ(aloop_subprocess_get_returncode(p, &code), 0); /* running */
    ASSERT_EQ(code, 12345);
    if (cases[i].how == 0)
      OK(aloop_subprocess_terminate(p));
    else if (cases[i].how == 1)
      OK(aloop_subprocess_kill(p));
    else
      OK(aloop_subprocess_send_signal(p, SIGINT));
    wait_lost(s);
    ASSERT_EQ(returncode_of(s), cases[i].want);
  }
  /* A signal the child handles: it exits with its own status. */
  struct proc *s = proc_new();
  s->signal_when_ready = SIGUSR1;
  const char *trap[] = {
      "sh", "-c", "trap 'exit 7' USR1; echo ready; while :; do sleep 0.02; done",
      NULL};
  aloop_subprocess_t *p = spawn(s, trap, NULL);
  ASSERT_EQ(aloop_subprocess_send_signal(p, 0), ALOOP_EINVAL);
  ASSERT_EQ(aloop_subprocess_send_signal(p, 65), ALOOP_EINVAL);
  wait_lost(s);
  ASSERT_EQ(returncode_of(s), 7);
  close_loop();
}

/* Signalling after the exit was seen (before connection_lost) does nothing. */
static void signal_in_exited(aloop_subprocess_t *p, void *ud) {
  c_exited(p, ud);
  OK(aloop_subprocess_kill(p));
  OK(aloop_subprocess_terminate(p));
}

TEST(signal_after_exit_is_harmless) {
  struct proc *s = proc_new();
  aloop_subprocess_protocol_t pr = proto;
  pr.process_exited = signal_in_exited;
  aloop_future_t *f;
  const char *argv[] = {"true", NULL};
  loop_up();
  loop_tid = gettid_();
  OK(aloop_subprocess_exec(loop, argv, &pr, s, c_free, NULL, &f));
  OK(aloop_loop_run_until_complete(loop, f));
  OK(aloop_future_free(f));
  wait_lost(s);
  ASSERT_EQ(returncode_of(s), 0);
  close_loop();
}

TEST(bad_executable_fails_at_spawn) {
  char dir[] = "/tmp/aloop-sp-XXXXXX";
  ASSERT(mkdtemp(dir) != NULL);
  char noexec[300];
  snprintf(noexec, sizeof noexec, "%s/noexec.sh", dir);
  int fd = open(noexec, O_CREAT | O_WRONLY, 0644);
  ASSERT(fd >= 0);
  ASSERT_EQ(write(fd, "#!/bin/sh\necho hi\n", 18), 18);
  close(fd);
  struct {
    const char *argv0, *cwd, *path;
    int want;
  } cases[] = {
      {"/nonexistent/program", NULL, NULL, ALOOP_ENOENT},
      {"asyncloop-no-such-command", NULL, NULL, ALOOP_ENOENT},
      {"asyncloop-no-such-command", NULL, "PATH=/nonexistent", ALOOP_ENOENT},
      {noexec, NULL, NULL, ALOOP_EACCES},
      {dir, NULL, NULL, ALOOP_EACCES},
      {"true", "/nonexistent-dir", NULL, ALOOP_ENOENT},
  };
  loop_up();
  loop_tid = gettid_();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct proc *s = proc_new();
    const char *argv[] = {cases[i].argv0, NULL};
    const char *env[] = {cases[i].path, NULL};
    aloop_subprocess_options_t o = {.size = sizeof o};
    o.cwd = cases[i].cwd;
    if (cases[i].path)
      o.env = env;
    aloop_future_t *f = NULL;
    OK(aloop_subprocess_exec(loop, argv, &proto, s, c_free, &o, &f));
    ASSERT_EQ(aloop_future_done(f), 1); /* failed at spawn, not later */
    ASSERT_EQ(s->frees, 1);             /* free_cb already ran */
    ASSERT_EQ(aloop_future_exception(f), cases[i].want);
    aloop_subprocess_t *p;
    ASSERT_EQ(aloop_future_result_subprocess(f, &p), cases[i].want);
    char msg[256];
    ASSERT_CMP(aloop_future_error_message(f, msg, sizeof msg), >, 0);
    OK(aloop_future_free(f));
    run_for(0.02);
    ASSERT_EQ(s->made, 0);
    ASSERT_EQ(s->log[0], 0);
    ASSERT_EQ(s->frees, 1);
  }
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  close_loop();
  unlink(noexec);
  rmdir(dir);
  no_children_left();
}

TEST(invalid_arguments) {
  int frees = 0;
  aloop_future_t *f = NULL;
  const char *argv[] = {"true", NULL};
  const char *empty[] = {NULL};
  loop_up();
  ASSERT_EQ(aloop_subprocess_exec(NULL, argv, &proto, &frees, test_count_free, NULL, &f), ALOOP_EBADF);
  ASSERT_EQ(aloop_subprocess_exec(loop, NULL, &proto, &frees, test_count_free, NULL, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_subprocess_exec(loop, empty, &proto, &frees, test_count_free, NULL, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_subprocess_exec(loop, argv, NULL, &frees, test_count_free, NULL, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_subprocess_exec(loop, argv, &proto, &frees, test_count_free, NULL, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_subprocess_shell(loop, NULL, &proto, &frees, test_count_free, NULL, &f), ALOOP_EINVAL);
  aloop_subprocess_protocol_t bad = proto;
  bad.size = 0;
  ASSERT_EQ(aloop_subprocess_exec(loop, argv, &bad, &frees, test_count_free, NULL, &f), ALOOP_EINVAL);
  aloop_subprocess_options_t o = {0};
  ASSERT_EQ(aloop_subprocess_exec(loop, argv, &proto, &frees, test_count_free, &o, &f), ALOOP_EINVAL);
  o.size = sizeof o;
  o.stdin_mode = ALOOP_STDIO_STDOUT;
  ASSERT_EQ(aloop_subprocess_exec(loop, argv, &proto, &frees, test_count_free, &o, &f), ALOOP_EINVAL);
  o.stdin_mode = 99;
  ASSERT_EQ(aloop_subprocess_exec(loop, argv, &proto, &frees, test_count_free, &o, &f), ALOOP_EINVAL);
  o.stdin_mode = ALOOP_STDIO_FD;
  o.stdin_fd = -1;
  ASSERT_EQ(aloop_subprocess_exec(loop, argv, &proto, &frees, test_count_free, &o, &f), ALOOP_EBADF);
  ASSERT_EQ(frees, 11);
  /* Bad handles. */
  aloop_subprocess_t *bogus = (aloop_subprocess_t *)(uintptr_t)0x1234;
  int code;
  aloop_transport_t *t;
  ASSERT_EQ(aloop_subprocess_get_pid(NULL), ALOOP_EBADF);
  ASSERT_EQ(aloop_subprocess_get_pid(bogus), ALOOP_EBADF);
  ASSERT_EQ(aloop_subprocess_get_returncode(NULL, &code), ALOOP_EBADF);
  ASSERT_EQ(aloop_subprocess_get_pipe_transport(NULL, 0, &t), ALOOP_EBADF);
  ASSERT_EQ(aloop_subprocess_kill(NULL), ALOOP_EBADF);
  ASSERT_EQ(aloop_subprocess_terminate(NULL), ALOOP_EBADF);
  ASSERT_EQ(aloop_subprocess_send_signal(NULL, SIGTERM), ALOOP_EBADF);
  ASSERT_EQ(aloop_subprocess_close(NULL), ALOOP_EBADF);
  ASSERT_EQ(aloop_subprocess_is_closing(NULL), ALOOP_EBADF);
  /* A loop handle is not a subprocess handle. */
  ASSERT_EQ(aloop_subprocess_close((aloop_subprocess_t *)loop), ALOOP_EBADF);
  aloop_subprocess_t *p;
  ASSERT_EQ(aloop_future_result_subprocess(NULL, &p), ALOOP_EBADF);
  OK(aloop_future_new(loop, &f));
  ASSERT_EQ(aloop_future_result_subprocess(f, &p), ALOOP_ESTATE);
  OK(aloop_future_set_result(f, NULL));
  ASSERT_EQ(aloop_future_result_subprocess(f, &p), ALOOP_EINVAL);
  OK(aloop_future_free(f));
  close_loop();
}

TEST(stdio_modes_env_cwd) {
  /* stderr to stdout */
  struct proc *s = proc_new();
  const char *a1[] = {"sh", "-c", "echo a; echo b >&2; echo c", NULL};
  aloop_subprocess_options_t o = {.size = sizeof o};
  o.stderr_mode = ALOOP_STDIO_STDOUT;
  aloop_subprocess_t *p = spawn(s, a1, &o);
  aloop_transport_t *t = (aloop_transport_t *)1;
  OK(aloop_subprocess_get_pipe_transport(p, 2, &t));
  ASSERT_PTR_EQ(t, NULL);
  wait_lost(s);
  ASSERT_EQ(s->out_len, 6);
  ASSERT(memcmp(s->out, "a\nb\nc\n", 6) == 0);
  ASSERT_EQ(s->err_len, 0);
  ASSERT_EQ(s->pipe_lost[2], 0);

  /* An fd of ours for stdout; env and cwd. */
  int pp[2];
  ASSERT_EQ(pipe2(pp, O_CLOEXEC), 0);
  s = proc_new();
  const char *a2[] = {"sh", "-c", "echo $ALOOP_T; pwd", NULL};
  const char *env[] = {"ALOOP_T=hello", "PATH=/usr/bin:/bin", NULL};
  aloop_subprocess_options_t o2 = {.size = sizeof o2};
  o2.env = env;
  o2.cwd = "/tmp";
  o2.stdout_mode = ALOOP_STDIO_FD;
  o2.stdout_fd = pp[1];
  spawn(s, a2, &o2);
  close(pp[1]); /* the child has its copy */
  wait_lost(s);
  char buf[64] = {0};
  ssize_t n = read(pp[0], buf, sizeof buf - 1);
  ASSERT_CMP(n, >, 0);
  ASSERT_STR_EQ(buf, "hello\n/tmp\n");
  close(pp[0]);

  /* env NULL: this process's environment as it is now (setenv included). */
  ASSERT_EQ(setenv("ALOOP_LATE_VAR", "late", 1), 0);
  s = proc_new();
  const char *a3[] = {"sh", "-c", "printf %s \"$ALOOP_LATE_VAR\"", NULL};
  spawn(s, a3, NULL);
  wait_lost(s);
  ASSERT_EQ(s->out_len, 4);
  ASSERT(memcmp(s->out, "late", 4) == 0);

  /* Inherit: the child's stderr is our fd 2 (a pipe for this check). */
  ASSERT_EQ(pipe2(pp, O_CLOEXEC), 0);
  int saved = dup(2);
  ASSERT_EQ(dup2(pp[1], 2), 2);
  s = proc_new();
  const char *a4[] = {"sh", "-c", "echo inherited >&2", NULL};
  aloop_subprocess_options_t o4 = {.size = sizeof o4};
  o4.stderr_mode = ALOOP_STDIO_INHERIT;
  o4.stdin_mode = ALOOP_STDIO_DEVNULL;
  o4.stdout_mode = ALOOP_STDIO_DEVNULL;
  spawn(s, a4, &o4);
  ASSERT_EQ(dup2(saved, 2), 2);
  close(saved);
  close(pp[1]);
  wait_lost(s);
  memset(buf, 0, sizeof buf);
  n = read(pp[0], buf, sizeof buf - 1);
  ASSERT_STR_EQ(buf, "inherited\n");
  close(pp[0]);
  ASSERT_EQ(s->pipe_lost[0] + s->pipe_lost[1] + s->pipe_lost[2], 0);

  /* start_new_session: the child leads its own session. */
  s = proc_new();
  const char *a5[] = {"sh", "-c", "ps -o sid= -p $$ 2>/dev/null || cat /proc/$$/stat", NULL};
  aloop_subprocess_options_t o5 = {.size = sizeof o5};
  o5.start_new_session = 1;
  p = spawn(s, a5, &o5);
  int pid = aloop_subprocess_get_pid(p);
  wait_lost(s);
  ASSERT_EQ(returncode_of(s), 0);
  char want[32];
  snprintf(want, sizeof want, "%d", pid);
  s->out = realloc(s->out, s->out_len + 1);
  s->out[s->out_len] = 0;
  if (!strstr((char *)s->out, want))
    FAIL("child of start_new_session is not a session leader: %s", s->out);
  close_loop();
}

TEST(close_kills_and_still_reports) {
  struct proc *s = proc_new();
  const char *argv[] = {"sleep", "30", NULL};
  aloop_subprocess_t *p = spawn(s, argv, NULL);
  ASSERT_EQ(aloop_loop_close(loop), ALOOP_EBUSY); /* a running subprocess */
  OK(aloop_subprocess_close(p));
  ASSERT_EQ(aloop_subprocess_is_closing(p), 1);
  OK(aloop_subprocess_close(p)); /* twice is harmless */
  wait_lost(s);
  ASSERT_EQ(returncode_of(s), -SIGKILL);
  ASSERT_EQ(s->frees, 1);
  close_loop();
  no_children_left();
}

TEST(close_inside_connection_made) {
  struct proc *s = proc_new();
  s->close_in_made = 1;
  const char *argv[] = {"sleep", "30", NULL};
  spawn(s, argv, NULL);
  wait_lost(s);
  ASSERT_EQ(returncode_of(s), -SIGKILL);
  ASSERT_EQ(s->pipe_lost[0] + s->pipe_lost[1] + s->pipe_lost[2], 3);
  close_loop();
}

/* Children whose transport was closed and whose loop was closed before
 * their exit was seen are reaped by the library. */
TEST(no_zombies_after_loop_close) {
  enum { K = 4 };
  struct proc *s[K];
  aloop_subprocess_t *p[K];
  int pids[K];
  const char *argv[] = {"sleep", "30", NULL};
  aloop_subprocess_options_t o = {.size = sizeof o};
  o.stdin_mode = o.stdout_mode = o.stderr_mode = ALOOP_STDIO_DEVNULL;
  for (int i = 0; i < K; i++) {
    s[i] = proc_new();
    p[i] = spawn(s[i], argv, i == 0 ? NULL : &o);
    pids[i] = aloop_subprocess_get_pid(p[i]);
  }
  /* One with pipes: closed, then its pipes close in an iteration. */
  OK(aloop_subprocess_close(p[0]));
  RUN_UNTIL(s[0]->pipe_lost[0] && s[0]->pipe_lost[1] && s[0]->pipe_lost[2]);
  /* The others: closed and the loop closed at once, without running. */
  for (int i = 1; i < K; i++)
    OK(aloop_subprocess_close(p[i]));
  OK(aloop_loop_close(loop));
  for (int i = 0; i < K; i++)
    ASSERT_EQ(s[i]->frees, 1); /* free_cb ran (inside loop_close) */
  for (int i = 1; i < K; i++)
    ASSERT_EQ(s[i]->exited, 0); /* their exit was never seen */
  OK(aloop_loop_free(loop));
  loop = NULL;
  no_children_left();
  for (int i = 0; i < K; i++) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", pids[i]);
    struct stat st;
    if (stat(path, &st) == 0) {
      /* A reused pid is possible but must not be our child. */
      ASSERT(reaped(pids[i]));
    }
  }
}

TEST(many_short_children_no_zombies) {
  enum { K = 40 };
  struct proc *s[K];
  loop_up();
  loop_tid = gettid_();
  for (int i = 0; i < K; i++) {
    s[i] = proc_new();
    aloop_future_t *f;
    const char *argv[] = {"true", NULL};
    OK(aloop_subprocess_exec(loop, argv, &proto, s[i], c_free, NULL, &f));
    OK(aloop_future_free(f));
  }
  int all = 0;
  double t0 = test_now();
  while (!all) {
    if (test_now() - t0 > 20)
      FAIL("not all children finished");
    OK(aloop_loop_run_once(loop, 0.05));
    all = 1;
    for (int i = 0; i < K; i++)
      all &= s[i]->lost == 1 && s[i]->frees == 1;
  }
  for (int i = 0; i < K; i++)
    ASSERT_EQ(returncode_of(s[i]), 0);
  close_loop();
  no_children_left();
}

TEST(cancelled_spawn_future) {
  struct proc *s = proc_new();
  aloop_future_t *f;
  const char *argv[] = {"sleep", "30", NULL};
  loop_up();
  loop_tid = gettid_();
  OK(aloop_subprocess_exec(loop, argv, &proto, s, c_free, NULL, &f));
  ASSERT_EQ(aloop_future_cancel(f), 1);
  OK(aloop_future_free(f));
  RUN_UNTIL(s->frees == 1);
  ASSERT_EQ(s->made, 0); /* no protocol callback for a cancelled spawn */
  ASSERT_EQ(s->log[0], 0);
  close_loop();
  no_children_left();
}
