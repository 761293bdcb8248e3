/*
 * gsb-trace: one traced run of a program, and when each phase of its start began.
 *
 * Traced runs are separate from timed ones (a stop costs tens of µs): the timed figures never
 * include tracing. The child is started with PTRACE_TRACEME + execve; the tracer takes
 * CLOCK_MONOTONIC at each stop:
 *   exec     the exec is done (the kernel loaded the ELF; the SIGTRAP of a traced execve)
 *   B:NAME   the program reached breakpoint NAME (entry, runtime.schedinit, runtime.main,
 *            main.main: addresses given by the caller, link-time; the load bias of a PIE is
 *            added here from AT_ENTRY)
 *   exit     the process is exiting (PTRACE_EVENT_EXIT of the main thread)
 *   reaped   wait4 returned its status
 *   ready    (-r TEXT) a stdout line contained TEXT, or (-p PORT) 127.0.0.1:PORT accepted a
 *            connection: the start is over; the group is killed. A reader process watches
 *            (the pipe, or the port every 100 µs), so the tracer's own waits never poll.
 * Breakpoints are hardware ones (debug registers: they fire whatever the memory holds, so they
 * also catch a UPX-packed program's original entry), or int3/BRK written into the code where
 * the CPU or the kernel refuses debug registers (-m int3 forces it).
 *   S:NAME   stage marks (-s NAME=HEXADDR: the runtime's own stages, more than the four debug
 *            registers hold) are int3/BRK written into the code once the first breakpoint
 *            (the entry) is reached, so a UPX-packed program is unpacked by then; each is
 *            taken once and the original instruction put back. They must be functions whose
 *            first call is on the main thread (the only one traced): another thread reaching
 *            an armed one would die of SIGTRAP. -R NAME also marks NAME's return (NAME_ret):
 *            an int3 at the return address read from the stack (x86-64) or LR (arm64) when
 *            NAME is reached.
 *   L:NAME   late marks (-L NAME=HEXADDR, x86-64): a debug register freed by a mark already
 *            taken (the entry's, first) is given to NAME. A debug register is the main
 *            thread's alone, so NAME may be first called on any thread (netpoll's init): it is
 *            seen where the main thread reaches it, and never harms another thread.
 *
 *   gsb-trace [-t TIMEOUT_MS] [-o OUT] [-e ERR] [-r READY | -p PORT] [-m hw|int3] [-P -x ELF_ENTRY]
 *             [-b NAME=HEXADDR]... [-s NAME=HEXADDR]... [-R NAME]... [-L NAME=HEXADDR]... -- PROG ARGS...
 *
 * Prints one line: status=exited|signaled|timeout|ready|traceerr code=N sig=N method=hw|int3
 * bias=HEX t_exec=NS [t_NAME=NS]... t_exit=NS t_reaped=NS [t_ready=NS] (ns since just before
 * fork). A breakpoint never reached has no t_NAME. The x86-64 path is tested; the arm64 path
 * (NT_ARM_HW_BREAK, BRK #0) is written from the kernel's interface and is untested.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_BP 4
#define MAX_SP 24

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct bp {
    const char *name;
    uint64_t addr;   /* link-time; + bias once known */
    uint64_t orig;   /* int3: the word the breakpoint replaced */
    int armed;
    int64_t t;       /* ns since t0, -1 until hit */
};

static struct bp bps[MAX_BP];
static int nbp = 0;
static struct bp sps[MAX_SP];  /* stage marks: int3/BRK, armed at the first breakpoint */
static int nsp = 0;
static int sps_armed = 0;
static const char *ret_of[MAX_SP];  /* -R: marks whose return is marked too */
static int nret = 0;
static char ret_names[MAX_SP][96];
static struct bp late[MAX_BP];  /* -L: waiting for a free debug register */
static int nlate = 0, late_next = 0;
static volatile sig_atomic_t timed_out = 0;
static volatile pid_t child = 0;

static void on_alarm(int sig) {
    (void)sig;
    timed_out = 1;
    if (child > 0) kill(-child, SIGKILL);
}

static uint64_t auxv_entry(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/auxv", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    uint64_t kv[2], entry = 0;
    while (read(fd, kv, sizeof kv) == (ssize_t)sizeof kv) {
        if (kv[0] == AT_ENTRY) { entry = kv[1]; break; }
        if (kv[0] == AT_NULL) break;
    }
    close(fd);
    return entry;
}

/* ---- hardware breakpoints ------------------------------------------------------------- */
#if defined(__x86_64__)
#define DR_OFF(i) (offsetof(struct user, u_debugreg) + (i) * sizeof(long))
static struct bp *slot_late[MAX_BP];  /* a freed debug register's late mark */
static void arm_ret(pid_t pid, const char *name);

static int hw_set(pid_t pid) {
    unsigned long dr7 = 0;
    for (int i = 0; i < nbp; i++) {
        if (ptrace(PTRACE_POKEUSER, pid, (void *)DR_OFF(i), (void *)bps[i].addr) != 0)
            return -1;
        dr7 |= 1UL << (2 * i);  /* local enable; RW=00 (execute), LEN=00 */
        bps[i].armed = 1;
    }
    return ptrace(PTRACE_POKEUSER, pid, (void *)DR_OFF(7), (void *)dr7) == 0 ? 0 : -1;
}

/* Which breakpoints fired (DR6), disarm them: each is wanted once. */
static int hw_hit(pid_t pid, int64_t t) {
    errno = 0;
    long dr6 = ptrace(PTRACE_PEEKUSER, pid, (void *)DR_OFF(6), NULL);
    if (errno) return 0;
    int any = 0;
    unsigned long dr7 = 0;
    for (int i = 0; i < nbp; i++) {
        if ((dr6 & (1L << i)) && bps[i].armed) {
            bps[i].t = t;
            bps[i].armed = 0;
            any = 1;
            if (late_next < nlate) {
                /* the slot is free: hand it to the next late mark (its own t stays with
                 * `late`, printed from there) */
                struct bp *l = &late[late_next++];
                if (ptrace(PTRACE_POKEUSER, pid, (void *)DR_OFF(i), (void *)l->addr) == 0) {
                    l->armed = 1;
                    slot_late[i] = l;
                }
            }
        } else if (slot_late[i] && (dr6 & (1L << i)) && slot_late[i]->armed) {
            slot_late[i]->t = t;
            slot_late[i]->armed = 0;
            any = 1;
            arm_ret(pid, slot_late[i]->name);
        }
        if (bps[i].armed || (slot_late[i] && slot_late[i]->armed)) dr7 |= 1UL << (2 * i);
    }
    ptrace(PTRACE_POKEUSER, pid, (void *)DR_OFF(6), (void *)0);
    ptrace(PTRACE_POKEUSER, pid, (void *)DR_OFF(7), (void *)dr7);
    return any;
}
#elif defined(__aarch64__)
#include <asm/ptrace.h>
/* Control: enable (bit 0), EL0 (privilege bits 2:1 = 0b10), byte-address-select 0xf (bits
 * 12:5): an execution breakpoint on a 4-byte instruction. */
#define ARM_BP_CTRL ((0xfU << 5) | (2U << 1) | 1U)

static int hw_write(pid_t pid) {
    struct user_hwdebug_state st;
    memset(&st, 0, sizeof st);
    for (int i = 0; i < nbp; i++) {
        st.dbg_regs[i].addr = bps[i].addr;
        st.dbg_regs[i].ctrl = bps[i].armed ? ARM_BP_CTRL : 0;
    }
    struct iovec iov = {&st, offsetof(struct user_hwdebug_state, dbg_regs)
                                 + nbp * sizeof(st.dbg_regs[0])};
    return ptrace(PTRACE_SETREGSET, pid, (void *)NT_ARM_HW_BREAK, &iov) == 0 ? 0 : -1;
}

static int hw_set(pid_t pid) {
    for (int i = 0; i < nbp; i++) bps[i].armed = 1;
    return hw_write(pid);
}

static int hw_hit(pid_t pid, int64_t t) {
    siginfo_t si;
    if (ptrace(PTRACE_GETSIGINFO, pid, NULL, &si) != 0) return 0;
    int any = 0;
    for (int i = 0; i < nbp; i++) {
        if (bps[i].armed && (uint64_t)si.si_addr == bps[i].addr) {
            bps[i].t = t;
            bps[i].armed = 0;
            any = 1;
        }
    }
    if (any) hw_write(pid);
    return any;
}
#else
static int hw_set(pid_t pid) { (void)pid; errno = ENOSYS; return -1; }
static int hw_hit(pid_t pid, int64_t t) { (void)pid; (void)t; return 0; }
#endif

/* ---- software breakpoints -------------------------------------------------------------- */
#if defined(__x86_64__)
#define TRAP_WORD(w) (((w) & ~0xffUL) | 0xccUL)
#define TRAP_PC_BACK 1
#elif defined(__aarch64__)
#define TRAP_WORD(w) (((w) & ~0xffffffffUL) | 0xd4200000UL) /* BRK #0 */
#define TRAP_PC_BACK 0
#else
#define TRAP_WORD(w) (w)
#define TRAP_PC_BACK 0
#endif

static int sw_arm(pid_t pid, struct bp *b) {
    errno = 0;
    long w = ptrace(PTRACE_PEEKTEXT, pid, (void *)b->addr, NULL);
    if (errno) return -1;
    b->orig = (uint64_t)w;
    if (ptrace(PTRACE_POKETEXT, pid, (void *)b->addr, (void *)TRAP_WORD((uint64_t)w)))
        return -1;
    b->armed = 1;
    return 0;
}

static int sw_set(pid_t pid) {
    for (int i = 0; i < nbp; i++)
        if (sw_arm(pid, &bps[i])) return -1;
    return 0;
}

/* Stage marks, once: a mark that cannot be written is left out (it has no t_NAME). */
static void sw_arm_stages(pid_t pid) {
    if (sps_armed) return;
    sps_armed = 1;
    for (int i = 0; i < nsp; i++) sw_arm(pid, &sps[i]);
}

static int get_pc(pid_t pid, uint64_t *pc) {
#if defined(__x86_64__)
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, pid, NULL, &r)) return -1;
    *pc = r.rip;
    return 0;
#elif defined(__aarch64__)
    struct user_pt_regs r;
    struct iovec iov = {&r, sizeof r};
    if (ptrace(PTRACE_GETREGSET, pid, (void *)NT_PRSTATUS, &iov)) return -1;
    *pc = r.pc;
    return 0;
#else
    (void)pid; (void)pc;
    return -1;
#endif
}

static int set_pc(pid_t pid, uint64_t pc) {
#if defined(__x86_64__)
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, pid, NULL, &r)) return -1;
    r.rip = pc;
    return ptrace(PTRACE_SETREGS, pid, NULL, &r) ? -1 : 0;
#else
    (void)pid; (void)pc;
    return 0; /* arm64: BRK leaves the PC on the instruction */
#endif
}

/* The return address of a function stopped at its first instruction. */
static uint64_t return_address(pid_t pid) {
#if defined(__x86_64__)
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, pid, NULL, &r)) return 0;
    errno = 0;
    long ra = ptrace(PTRACE_PEEKDATA, pid, (void *)r.rsp, NULL);
    return errno ? 0 : (uint64_t)ra;
#elif defined(__aarch64__)
    struct user_pt_regs r;
    struct iovec iov = {&r, sizeof r};
    if (ptrace(PTRACE_GETREGSET, pid, (void *)NT_PRSTATUS, &iov)) return 0;
    return r.regs[30];
#else
    (void)pid;
    return 0;
#endif
}

/* NAME was reached: where NAME_ret is asked for (-R), arm a mark at its return address. */
static void arm_ret(pid_t pid, const char *name) {
    for (int k = 0; k < nret; k++) {
        if (strcmp(ret_of[k], name) == 0 && nsp < MAX_SP) {
            uint64_t ra = return_address(pid);
            if (!ra) return;
            snprintf(ret_names[k], sizeof ret_names[k], "%s_ret", name);
            sps[nsp] = (struct bp){ret_names[k], ra, 0, 0, -1};
            if (sw_arm(pid, &sps[nsp]) == 0) nsp++;
        }
    }
}

/* A mark of `arr` was reached (its trap at the PC): record it, put the instruction back, and
 * where NAME_ret is asked for, arm a mark at the return address. */
static int sw_hit_in(pid_t pid, int64_t t, struct bp *arr, int n) {
    uint64_t pc;
    if (get_pc(pid, &pc)) return 0;
    uint64_t at = pc - TRAP_PC_BACK;
    for (int i = 0; i < n; i++) {
        if (arr[i].armed && arr[i].addr == at) {
            arr[i].t = t;
            arr[i].armed = 0;
            ptrace(PTRACE_POKETEXT, pid, (void *)at, (void *)arr[i].orig);
            set_pc(pid, at);
            arm_ret(pid, arr[i].name);
            return 1;
        }
    }
    return 0;
}

static int sw_hit(pid_t pid, int64_t t) { return sw_hit_in(pid, t, bps, nbp); }

/* ---- the run ----------------------------------------------------------------------------- */
/* The child: its own process group, stdio, PTRACE_TRACEME, exec (in a function of its own so
 * that nothing of main() lives across the vfork). */
static pid_t spawn_traced(char **av, int in, int o, int e) {
    pid_t pid = vfork();
    if (pid == 0) {
        setpgid(0, 0);
        dup2(in, 0); dup2(o, 1); dup2(e, 2);
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) _exit(125);
        execvp(av[0], av);
        _exit(127);
    }
    return pid;
}

static void usage(void) {
    fprintf(stderr, "usage: gsb-trace [-t MS] [-o OUT] [-e ERR] [-r READY] [-m hw|int3] "
                    "[-P -x ENTRY] [-b NAME=HEXADDR]... [-s NAME=HEXADDR]... [-R NAME]... "
                    "[-L NAME=HEXADDR]... -- PROG ARGS...\n");
    exit(2);
}

/* NAME=HEXADDR into arr[*n] (usage error when malformed or full). */
static void add_mark(char *arg, struct bp *arr, int *n, int max) {
    char *eq = strchr(arg, '=');
    if (!eq || *n >= max) usage();
    *eq = 0;
    arr[*n] = (struct bp){arg, strtoull(eq + 1, NULL, 16), 0, 0, -1};
    (*n)++;
}

/* True when 127.0.0.1:PORT accepts a connection (a server timed to ready on a port). */
static int port_accepts(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

int main(int argc, char **argv) {
    long timeout_ms = 10000;
    const char *out = "/dev/null", *err = "/dev/null", *ready = NULL, *mode = "hw";
    int pie = 0, port = 0;
    uint64_t elf_entry = 0;
    int opt;
    while ((opt = getopt(argc, argv, "t:o:e:r:p:m:Px:b:s:R:L:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 't': timeout_ms = atol(optarg); break;
        case 'o': out = optarg; break;
        case 'e': err = optarg; break;
        case 'r': ready = optarg; break;
        case 'm': mode = optarg; break;
        case 'P': pie = 1; break;
        case 'x': elf_entry = strtoull(optarg, NULL, 16); break;
        case 'b': add_mark(optarg, bps, &nbp, MAX_BP); break;
        case 's': add_mark(optarg, sps, &nsp, MAX_SP / 2); break;
        case 'R':
            if (nret >= MAX_SP / 2) usage();
            ret_of[nret++] = optarg;
            break;
        case 'L': add_mark(optarg, late, &nlate, MAX_BP); break;
        default: usage();
        }
    }
    if (optind >= argc) usage();

    int pipefd[2] = {-1, -1}, readyfd[2] = {-1, -1};
    if (ready && pipe2(pipefd, O_CLOEXEC) != 0) {
        perror("pipe");
        return 2;
    }
    if ((ready || port) && pipe2(readyfd, O_CLOEXEC) != 0) {
        perror("pipe");
        return 2;
    }
    if (port && port_accepts(port)) {  /* someone else's server: "ready" would be no time */
        printf("status=traceerr code=%d sig=0 method=%s why=port_in_use\n", EADDRINUSE, mode);
        return 0;
    }
    /* Opened before the clock starts: the child only dup2()s them. */
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int o = ready ? pipefd[1] : open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int e = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in < 0 || o < 0 || e < 0) { perror("open"); return 2; }
    int64_t t0 = now_ns();
    /* vfork, as posix_spawn does: the parent's pages are not copied (fork() added ~0.25 ms
     * to every traced start on the development VM). The child only makes syscalls. */
    pid_t pid = spawn_traced(&argv[optind], in, o, e);
    if (pid < 0) { perror("vfork"); return 2; }
    child = pid;
    setpgid(pid, pid);
    close(in); close(o); close(e);
    pid_t reader = -1;
    if (port) {
        reader = fork();
        if (reader == 0) {
            struct timespec ts = {0, 100000};
            while (!port_accepts(port)) nanosleep(&ts, NULL);
            int64_t t = now_ns() - t0;
            kill(-pid, SIGKILL);
            if (write(readyfd[1], &t, sizeof t) != (ssize_t)sizeof t) _exit(1);
            _exit(0);
        }
        close(readyfd[1]);
    } else if (ready) {
        /* A reader process watches the program's stdout, so the tracer's waitpid() blocks
         * (polling between stops would delay every stop by up to the poll interval). */
        reader = fork();
        if (reader == 0) {
            char buf[4096];
            size_t have = 0;
            for (;;) {
                ssize_t n = read(pipefd[0], buf + have, sizeof buf - 1 - have);
                if (n <= 0) _exit(1);
                have += (size_t)n;
                buf[have] = 0;
                if (strstr(buf, ready)) {
                    int64_t t = now_ns() - t0;
                    kill(-pid, SIGKILL);
                    if (write(readyfd[1], &t, sizeof t) != (ssize_t)sizeof t) _exit(1);
                    _exit(0);
                }
                if (have > sizeof buf / 2) {
                    char *nl = strrchr(buf, '\n');  /* keep the unfinished line */
                    if (nl) { have = strlen(nl + 1); memmove(buf, nl + 1, have + 1); }
                    else have = 0;
                }
            }
        }
        close(pipefd[0]);
        close(readyfd[1]);
    }
    signal(SIGALRM, on_alarm);
    struct itimerval it = {{0, 0}, {timeout_ms / 1000, (timeout_ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);

    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st)) {
        /* PTRACE_TRACEME refused (Yama, seccomp) or exec failed before the first stop */
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        printf("status=traceerr code=%d sig=0 method=none why=%s\n", code,
               code == 125 ? "ptrace_refused" : code == 127 ? "exec_failed" : "no_exec_stop");
        if (reader > 0) { kill(reader, SIGKILL); waitpid(reader, NULL, 0); }
        return 0;
    }
    int64_t t_exec = now_ns() - t0;
    ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)(PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL));
    uint64_t bias = 0;
    if (pie) {
        uint64_t at = auxv_entry(pid);
        if (at && elf_entry) bias = at - elf_entry;
    }
    for (int i = 0; i < nbp; i++) bps[i].addr += bias;
    for (int i = 0; i < nsp; i++) sps[i].addr += bias;
    for (int i = 0; i < nlate; i++) late[i].addr += bias;
    const char *method = "hw";
    if (nbp > 0) {
        int ok = -1;
        if (strcmp(mode, "hw") == 0) ok = hw_set(pid);
        if (ok != 0) {
            method = "int3";
            ok = sw_set(pid);
        }
        if (ok != 0) method = "none";
        if (strcmp(method, "int3") == 0) sw_arm_stages(pid);
    }
    ptrace(PTRACE_CONT, pid, NULL, NULL);

    int64_t t_exit = -1, t_reaped = -1, t_ready = -1;
    const char *status = "exited";
    for (;;) {
        pid_t w = waitpid(pid, &st, __WALL);
        if (w < 0) {
            if (errno == EINTR) continue;
            break;
        }
        int64_t t = now_ns() - t0;
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            t_reaped = t;
            break;
        }
        if (!WIFSTOPPED(st)) continue;
        int sig = WSTOPSIG(st);
        if (sig == SIGTRAP && (st >> 16) == PTRACE_EVENT_EXIT) {
            if (t_exit < 0) t_exit = t;
            ptrace(PTRACE_CONT, pid, NULL, NULL);
            continue;
        }
        if (sig == SIGTRAP) {
            int hit = strcmp(method, "hw") == 0 ? hw_hit(pid, t) : sw_hit(pid, t);
            if (hit) sw_arm_stages(pid);  /* the entry (or an earlier mark): code in place */
            else hit = sw_hit_in(pid, t, sps, nsp);
            ptrace(PTRACE_CONT, pid, NULL, (void *)(long)(hit ? 0 : SIGTRAP));
            continue;
        }
        ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig);  /* the program's own signal */
    }
    if (reader > 0) {
        int64_t t;
        if (read(readyfd[0], &t, sizeof t) == (ssize_t)sizeof t) t_ready = t;
        kill(reader, SIGKILL);
        waitpid(reader, NULL, 0);
    }
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    if (t_ready >= 0) status = "ready";
    else if (timed_out) status = "timeout";
    else if (WIFSIGNALED(st)) status = "signaled";
    printf("status=%s code=%d sig=%d method=%s bias=%llx t_exec=%lld", status, code, sig, method,
           (unsigned long long)bias, (long long)t_exec);
    for (int i = 0; i < nbp; i++)
        if (bps[i].t >= 0) printf(" t_%s=%lld", bps[i].name, (long long)bps[i].t);
    for (int i = 0; i < nsp; i++)
        if (sps[i].t >= 0) printf(" t_%s=%lld", sps[i].name, (long long)sps[i].t);
    for (int i = 0; i < nlate; i++)
        if (late[i].t >= 0) printf(" t_%s=%lld", late[i].name, (long long)late[i].t);
    if (t_exit >= 0) printf(" t_exit=%lld", (long long)t_exit);
    if (t_reaped >= 0) printf(" t_reaped=%lld", (long long)t_reaped);
    if (t_ready >= 0) printf(" t_ready=%lld", (long long)t_ready);
    printf("\n");
    return 0;
}
