/* A tool that wants out (tests/supervisor.rs builds it with cc): tries every door the
   supervisor's filter closes and prints one line per attempt, NAME ret=R errno=E, then their
   ordinary twins. With "late": forks a child that, once the first process has exited, tries
   to install a listener of its own. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <linux/filter.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static void line(const char *name, long r) {
    printf("%s ret=%ld errno=%d\n", name, r, r < 0 ? errno : 0);
    fflush(stdout);
}

static long new_listener(void) {
    struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {1, &allow};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}

/* "swap": a MegaRAID call on descriptor 5 (/dev/null, which the tests name as the node), then
   the same on descriptor 5 made a pipe with dup2: the guard must see the new file. */
static int swap(void) {
    static unsigned char packet[404];
    int null = open("/dev/null", O_RDWR);
    int p[2];
    if (null < 0 || pipe(p) != 0 || dup2(null, 5) < 0)
        return 2;
    line("node", ioctl(5, 0xc1944d01UL, packet));
    dup2(p[0], 5);
    line("swapped", ioctl(5, 0xc1944d01UL, packet));
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "swap") == 0)
        return swap();
    if (argc > 1 && strcmp(argv[1], "late") == 0) {
        pid_t c = fork();
        if (c == 0) {
            /* The first process is gone by now. */
            sleep(1);
            line("late_listener", new_listener());
            _exit(0);
        }
        return 0;
    }
    line("ptrace_traceme", ptrace(PTRACE_TRACEME, 0, 0, 0));
    long c = syscall(SYS_clone, CLONE_UNTRACED | SIGCHLD, 0, 0, 0, 0);
    if (c == 0)
        _exit(0);
    line("clone_untraced", c);
    line("clone3", syscall(435, 0, 0));
    line("pidfd_getfd", syscall(438, 0, 0, 0));
    char buf[8] = {0};
    struct iovec l = {buf, 8}, r = {buf, 8};
    line("process_vm_writev", syscall(SYS_process_vm_writev, getppid(), &l, 1, &r, 1, 0));
    /* Whether this process may use CAP_SYS_PTRACE (CapEff bit 19), as root would. */
    FILE *status = fopen("/proc/self/status", "r");
    char text[256];
    unsigned long long eff = 0;
    while (status && fgets(text, sizeof text, status))
        sscanf(text, "CapEff: %llx", &eff);
    if (status)
        fclose(status);
    line("cap_sys_ptrace", (long)((eff >> 19) & 1));
    char mem[64];
    snprintf(mem, sizeof mem, "/proc/%d/mem", (int)getppid());
    line("proc_mem", open(mem, O_RDWR));
    line("listener", new_listener());
    /* Their ordinary twins still work. */
    pid_t p = fork();
    if (p == 0)
        _exit(3);
    int st = 0;
    waitpid(p, &st, 0);
    line("fork", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {1, &allow};
    line("plain_filter", syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
    return 0;
}
