/* A system clock (CLOCK_REALTIME) of its own for the processes that preload this library, so a real chronyd can
 * step it while the gate's daemon runs on it, and the machine's clock is never touched.
 *
 * The clock is real time plus an offset in nanoseconds, kept in an 8-byte file (SITEGATE_TEST_CLOCK) that every
 * process maps: a step by one (settimeofday, clock_settime, adjtimex ADJ_SETOFFSET) is seen by all at once, as a
 * kernel's step is. Monotonic time is left alone, as a step leaves it. adjtimex keeps what it is given
 * (frequency, tick, status, errors, constant) and returns it as the kernel does (man 2 adjtimex); the frequency is
 * not applied to the clock (at chrony's 500 ppm limit, under 5 ms over a 10 s test). A mode this clock does not
 * implement (a non-zero ADJ_OFFSET for the kernel PLL) fails with EINVAL rather than being ignored.
 *
 * Built by the test that uses it: cc -shared -fPIC -o system_clock.so system_clock.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

static volatile int64_t *offset_ns;
static int (*real_clock_gettime)(clockid_t, struct timespec *);
static struct timex kept = {.tick = 10000, .status = STA_UNSYNC, .maxerror = 16000000, .esterror = 16000000,
                            .constant = 2, .precision = 1, .tolerance = 32768000};

static void attach(void) {
    if (real_clock_gettime)
        return;
    real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    const char *path = getenv("SITEGATE_TEST_CLOCK");
    int fd = path ? open(path, O_RDWR) : -1;
    void *map = fd < 0 ? MAP_FAILED : mmap(NULL, sizeof(int64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        abort(); /* never fall back to the machine's clock: a step would reach it */
    offset_ns = map;
    close(fd);
}

static int64_t now_ns(void) {
    struct timespec real;
    attach();
    real_clock_gettime(CLOCK_REALTIME, &real);
    return (int64_t)real.tv_sec * 1000000000 + real.tv_nsec + *offset_ns;
}

static int is_realtime(clockid_t id) {
    return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    attach();
    if (!is_realtime(id))
        return real_clock_gettime(id, ts);
    int64_t ns = now_ns();
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
    return 0;
}

int gettimeofday(struct timeval *tv, void *tz) {
    (void)tz;
    int64_t ns = now_ns();
    tv->tv_sec = ns / 1000000000;
    tv->tv_usec = (ns % 1000000000) / 1000;
    return 0;
}

time_t time(time_t *out) {
    time_t seconds = now_ns() / 1000000000;
    if (out)
        *out = seconds;
    return seconds;
}

static int set_ns(int64_t wanted) {
    *offset_ns += wanted - now_ns();
    return 0;
}

int clock_settime(clockid_t id, const struct timespec *ts) {
    if (id != CLOCK_REALTIME) {
        errno = EINVAL;
        return -1;
    }
    return set_ns((int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec);
}

int settimeofday(const struct timeval *tv, const struct timezone *tz) {
    (void)tz;
    return tv ? set_ns((int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000) : 0;
}

int adjtimex(struct timex *tx) {
    attach();
    int modes = tx->modes;
    if (modes & ADJ_OFFSET && tx->offset != 0) {
        errno = EINVAL; /* the kernel PLL and adjtime() slewing: not this clock's (clearing them is accepted) */
        return -1;
    }
    if (modes & ADJ_SETOFFSET) {
        long unit = modes & ADJ_NANO ? 1 : 1000;
        if (tx->time.tv_usec < 0 || tx->time.tv_usec >= 1000000000 / unit) {
            errno = EINVAL; /* as the kernel: the fraction must be normalised */
            return -1;
        }
        *offset_ns += (int64_t)tx->time.tv_sec * 1000000000 + tx->time.tv_usec * unit;
    }
    if (modes & ADJ_FREQUENCY)
        kept.freq = tx->freq;
    if (modes & ADJ_TICK)
        kept.tick = tx->tick;
    if (modes & ADJ_STATUS)
        kept.status = tx->status;
    if (modes & ADJ_MAXERROR)
        kept.maxerror = tx->maxerror;
    if (modes & ADJ_ESTERROR)
        kept.esterror = tx->esterror;
    if (modes & ADJ_TIMECONST)
        kept.constant = tx->constant;
    if (modes & ADJ_NANO)
        kept.status |= STA_NANO;
    if (modes & ADJ_MICRO)
        kept.status &= ~STA_NANO;
    struct timex answer = kept;
    int64_t ns = now_ns();
    answer.modes = 0;
    answer.time.tv_sec = ns / 1000000000;
    answer.time.tv_usec = (ns % 1000000000) / (kept.status & STA_NANO ? 1 : 1000);
    *tx = answer;
    return kept.status & STA_UNSYNC ? TIME_ERROR : TIME_OK;
}

int ntp_adjtime(struct timex *tx) {
    return adjtimex(tx);
}
