/* etcd_harness.h - starts and stops real etcd members (Debian's etcd 3.4) for the cluster
 * tests: free loopback ports, data dirs under /dev/shm, members killed by PID (SIGTERM, then
 * SIGKILL) and, through PR_SET_PDEATHSIG, also when the test itself dies. Header-only (static
 * functions) because each test is one executable.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_TEST_ETCD_HARNESS_H
#define STRATUS_TEST_ETCD_HARNESS_H

#include "cluster/etcd.h"
#include "util/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct etcd_member {
    pid_t pid;
    int cport, pport;
    char name[16];
    char dir[256];
    char url[64];         /* client URL */
    char initial[1024];   /* --initial-cluster */
    const char *extra[8]; /* extra command-line arguments, NULL-terminated */
};

static inline int harness_free_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static inline void harness_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static inline int etcd_member_spawn(struct etcd_member *m)
{
    char curl_[64], purl[64], log[300];
    const char *argv[40];
    int n = 0;
    pid_t pid;

    snprintf(curl_, sizeof curl_, "http://127.0.0.1:%d", m->cport);
    snprintf(purl, sizeof purl, "http://127.0.0.1:%d", m->pport);
    snprintf(log, sizeof log, "%s.log", m->dir);
    argv[n++] = "etcd";
    argv[n++] = "--name";
    argv[n++] = m->name;
    argv[n++] = "--data-dir";
    argv[n++] = m->dir;
    argv[n++] = "--listen-client-urls";
    argv[n++] = curl_;
    argv[n++] = "--advertise-client-urls";
    argv[n++] = curl_;
    argv[n++] = "--listen-peer-urls";
    argv[n++] = purl;
    argv[n++] = "--initial-advertise-peer-urls";
    argv[n++] = purl;
    argv[n++] = "--initial-cluster";
    argv[n++] = m->initial;
    argv[n++] = "--initial-cluster-state";
    argv[n++] = "new";
    argv[n++] = "--initial-cluster-token";
    argv[n++] = "stratus-test";
    for (int i = 0; i < 8 && m->extra[i]; i++)
        argv[n++] = m->extra[i];
    argv[n] = NULL;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp("etcd", (char *const *)argv);
        _exit(127);
    }
    m->pid = pid;
    return 0;
}

/* Sets up n members named m1..mn (ports, dirs, initial cluster) and starts them. */
static inline int etcd_cluster_start(struct etcd_member *ms, int n, const char *tag)
{
    char initial[1024] = "";
    for (int i = 0; i < n; i++) {
        struct etcd_member *m = &ms[i];
        char part[128];
        m->cport = harness_free_port();
        m->pport = harness_free_port();
        while (m->pport == m->cport)
            m->pport = harness_free_port();
        snprintf(m->name, sizeof m->name, "m%d", i + 1);
        snprintf(m->dir, sizeof m->dir, "/dev/shm/stratus-etcdtest-%s-%d-m%d", tag, (int)getpid(),
                 i + 1);
        snprintf(m->url, sizeof m->url, "http://127.0.0.1:%d", m->cport);
        snprintf(part, sizeof part, "%s%s=http://127.0.0.1:%d", i ? "," : "", m->name, m->pport);
        strcat(initial, part);
    }
    for (int i = 0; i < n; i++) {
        snprintf(ms[i].initial, sizeof ms[i].initial, "%s", initial);
        if (etcd_member_spawn(&ms[i]) < 0)
            return -1;
    }
    return 0;
}

/* Waits until the endpoints serve a linearizable read (the cluster has a leader). */
static inline int etcd_wait_ready(const char *endpoints, int timeout_ms)
{
    struct stratus_etcd_config cfg = {
        .endpoints = endpoints, .request_timeout_ms = 1000, .connect_timeout_ms = 300};
    struct stratus_etcd *c;
    struct stratus_errbuf eb;
    int64_t deadline = stratus_mono_ms() + timeout_ms;
    int rc = -1;

    if (stratus_etcd_open(&cfg, &c, &eb) < 0)
        return -1;
    while (stratus_mono_ms() < deadline) {
        struct stratus_etcd_resp r;
        if (stratus_etcd_get(c, "ready", 5, &r, &eb) == 0) {
            stratus_etcd_resp_free(&r);
            rc = 0;
            break;
        }
        harness_sleep_ms(100);
    }
    if (rc < 0)
        fprintf(stderr, "etcd not ready at %s: %s\n", endpoints, eb.msg);
    stratus_etcd_close(c);
    return rc;
}

static inline void etcd_member_kill(struct etcd_member *m)
{
    if (m->pid > 0) {
        kill(m->pid, SIGKILL);
        waitpid(m->pid, NULL, 0);
        m->pid = 0;
    }
}

/* SIGTERM, then SIGKILL after 3 s. */
static inline void etcd_member_stop(struct etcd_member *m)
{
    if (m->pid > 0) {
        kill(m->pid, SIGTERM);
        for (int i = 0; i < 60; i++) {
            if (waitpid(m->pid, NULL, WNOHANG) == m->pid) {
                m->pid = 0;
                return;
            }
            harness_sleep_ms(50);
        }
        etcd_member_kill(m);
    }
}

static inline void etcd_cluster_destroy(struct etcd_member *ms, int n)
{
    for (int i = 0; i < n; i++) {
        char cmd[600];
        etcd_member_kill(&ms[i]); /* quorum may be gone: SIGTERM can hang */
        if (ms[i].dir[0] && strncmp(ms[i].dir, "/dev/shm/stratus-etcdtest-", 26) == 0) {
            snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.log'", ms[i].dir, ms[i].dir);
            if (system(cmd) != 0)
                fprintf(stderr, "cleanup of %s failed\n", ms[i].dir);
        }
    }
}

/* "url1,url2,..." of the members. */
static inline void etcd_cluster_endpoints(struct etcd_member *ms, int n, char *out, size_t cap)
{
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", i ? "," : "", ms[i].url);
    }
}

/* Skips the test (exit 77, ctest's SKIP_RETURN_CODE) when etcd is not installed. */
static inline void etcd_require_binary(void)
{
    if (system("command -v etcd >/dev/null 2>&1") != 0) {
        printf("SKIP: etcd not installed (scripts/install-deps.sh installs etcd-server)\n");
        exit(77);
    }
}

#endif
