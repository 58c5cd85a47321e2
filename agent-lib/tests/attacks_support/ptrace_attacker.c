/* The attacker of class 1 (issue #11), run inside a container: until /stop-attack exists, it
 * scans /proc for the agent's setup helper (argv[0] ending in "kata-agent") and tries
 * PTRACE_SEIZE, /proc/<pid>/mem and process_vm_readv on it; a success counts as a win only if
 * the target is still the helper afterwards (not the container's own program it executed
 * meanwhile). It also counts sightings whose cgroup differs from its own (a helper seen before
 * it joined the container's cgroup). Prints "seen=N won=N outside=N"; built with gcc -static
 * by attacks.rs. */
#define _GNU_SOURCE
#include <signal.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static ssize_t slurp(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n >= 0)
        buf[n] = 0;
    return n;
}

static int is_helper(const char *cmdline, ssize_t n) {
    size_t len = strnlen(cmdline, (size_t)n);
    const char *name = "kata-agent";
    size_t k = strlen(name);
    return len >= k && strcmp(cmdline + len - k, name) == 0;
}

static int still_helper(pid_t pid) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    ssize_t n = slurp(path, buf, sizeof buf);
    return n > 0 && is_helper(buf, n);
}

int main(void) {
    char own[4096], cg[4096], buf[4096], path[64];
    long seen = 0, won = 0, outside = 0;
    pid_t self = getpid();
    if (slurp("/proc/self/cgroup", own, sizeof own) <= 0)
        return 2;
    while (access("/stop-attack", F_OK) != 0) {
        DIR *d = opendir("/proc");
        if (!d)
            return 3;
        struct dirent *e;
        while ((e = readdir(d))) {
            pid_t pid = atoi(e->d_name);
            if (pid <= 1 || pid == self)
                continue;
            snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
            ssize_t n = slurp(path, buf, sizeof buf);
            if (n <= 0 || !is_helper(buf, n))
                continue;
            seen++;
            snprintf(path, sizeof path, "/proc/%d/cgroup", pid);
            /* An exiting process shows the root cgroup: count it only if still the helper. */
            if (slurp(path, cg, sizeof cg) > 0 && strcmp(cg, own) != 0 && still_helper(pid)) {
                outside++;
                printf("OUTSIDE %d: %s\n", pid, cg);
            }
            if (ptrace(PTRACE_SEIZE, pid, 0, 0) == 0) {
                /* Stopped, it can no longer execute its program: is it still the helper? */
                if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0 && waitpid(pid, NULL, __WALL) == pid
                    && still_helper(pid)) {
                    won++;
                    printf("WON ptrace %d\n", pid);
                }
                ptrace(PTRACE_DETACH, pid, 0, 0);
            }
            snprintf(path, sizeof path, "/proc/%d/mem", pid);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                if (still_helper(pid)) {
                    won++;
                    printf("WON mem %d\n", pid);
                }
                close(fd);
            }
            char byte;
            struct iovec local = {&byte, 1}, remote = {(void *)0x1000, 1};
            if ((process_vm_readv(pid, &local, 1, &remote, 1, 0) >= 0 || errno == EFAULT)
                && still_helper(pid)) {
                won++;
                printf("WON process_vm_readv %d\n", pid);
            }
        }
        closedir(d);
    }
    printf("seen=%ld won=%ld outside=%ld\n", seen, won, outside);
    return 0;
}
