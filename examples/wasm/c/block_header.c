/*
 * A Proxy-Wasm (ABI 0.2.1) HTTP filter in C: answers 403 to requests whose header
 * contains a pattern, both from the plugin configuration `<header>=<pattern>`
 * (e.g. `user-agent=sqlmap`; the match ignores ASCII case). Allowed requests get the
 * request header `x-c-filter: passed`; the number of blocked requests is kept in shared
 * data (`c-filter.blocked`) and logged.
 *
 * Build (Debian: clang, lld, wasi-libc, libclang-rt-dev-wasm32): examples/wasm/build.sh
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

enum { MAP_REQUEST_HEADERS = 0, BUFFER_PLUGIN_CONFIGURATION = 7 };
enum { LOG_DEBUG = 1, LOG_INFO = 2, LOG_WARN = 3 };
enum { ACTION_CONTINUE = 0, ACTION_PAUSE = 1 };

IMPORT(proxy_log) int proxy_log(int level, const char *msg, size_t len);
IMPORT(proxy_get_buffer_bytes)
int proxy_get_buffer_bytes(int buffer, size_t start, size_t max, char **data, size_t *len);
IMPORT(proxy_get_header_map_value)
int proxy_get_header_map_value(int map, const char *key, size_t key_len, char **value,
                               size_t *value_len);
IMPORT(proxy_add_header_map_value)
int proxy_add_header_map_value(int map, const char *key, size_t key_len, const char *value,
                               size_t value_len);
IMPORT(proxy_send_local_response)
int proxy_send_local_response(uint32_t status, const char *details, size_t details_len,
                              const char *body, size_t body_len, const char *headers,
                              size_t headers_len, int32_t grpc_status);
IMPORT(proxy_get_shared_data)
int proxy_get_shared_data(const char *key, size_t key_len, char **value, size_t *value_len,
                          uint32_t *cas);
IMPORT(proxy_set_shared_data)
int proxy_set_shared_data(const char *key, size_t key_len, const char *value, size_t value_len,
                          uint32_t cas);

static char header[128];
static size_t header_len;
static char pattern[256];
static size_t pattern_len;

static void log_text(int level, const char *text) { proxy_log(level, text, strlen(text)); }

EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1(void) {}

EXPORT(proxy_on_memory_allocate) void *proxy_on_memory_allocate(size_t size) {
    return malloc(size);
}

EXPORT(proxy_on_context_create) void proxy_on_context_create(uint32_t ctx, uint32_t parent) {}

EXPORT(proxy_on_vm_start) int proxy_on_vm_start(uint32_t ctx, size_t size) { return 1; }

EXPORT(proxy_on_configure) int proxy_on_configure(uint32_t ctx, size_t size) {
    char *data = NULL;
    size_t len = 0;
    if (size == 0 || proxy_get_buffer_bytes(BUFFER_PLUGIN_CONFIGURATION, 0, size, &data, &len) != 0) {
        log_text(LOG_WARN, "configuration missing: expected <header>=<pattern>");
        return 0;
    }
    char *eq = memchr(data, '=', len);
    size_t hl = eq ? (size_t)(eq - data) : 0;
    size_t pl = eq ? len - hl - 1 : 0;
    if (!eq || hl == 0 || hl >= sizeof header || pl == 0 || pl >= sizeof pattern) {
        log_text(LOG_WARN, "bad configuration: expected <header>=<pattern>");
        free(data);
        return 0;
    }
    memcpy(header, data, hl);
    header_len = hl;
    memcpy(pattern, eq + 1, pl);
    pattern_len = pl;
    free(data);
    char msg[512];
    snprintf(msg, sizeof msg, "blocking %.*s containing \"%.*s\"", (int)header_len, header,
             (int)pattern_len, pattern);
    log_text(LOG_INFO, msg);
    return 1;
}

/* Whether `hay` contains `needle`, ignoring ASCII case. */
static int contains(const char *hay, size_t hay_len, const char *needle, size_t needle_len) {
    if (needle_len > hay_len) return 0;
    for (size_t i = 0; i + needle_len <= hay_len; i++) {
        if (strncasecmp(hay + i, needle, needle_len) == 0) return 1;
    }
    return 0;
}

static void count_blocked(void) {
    static const char key[] = "c-filter.blocked";
    for (int attempt = 0; attempt < 4; attempt++) {
        char *value = NULL;
        size_t len = 0;
        uint32_t cas = 0, n = 0;
        if (proxy_get_shared_data(key, sizeof key - 1, &value, &len, &cas) == 0 && len == 4) {
            memcpy(&n, value, 4);
        }
        free(value);
        n++;
        if (proxy_set_shared_data(key, sizeof key - 1, (const char *)&n, 4, cas) == 0) {
            char msg[64];
            snprintf(msg, sizeof msg, "blocked requests so far: %u", (unsigned)n);
            log_text(LOG_DEBUG, msg);
            return;
        }
    }
}

EXPORT(proxy_on_request_headers)
int proxy_on_request_headers(uint32_t ctx, size_t headers, int end_of_stream) {
    char *value = NULL;
    size_t len = 0;
    int found = proxy_get_header_map_value(MAP_REQUEST_HEADERS, header, header_len, &value, &len) == 0;
    int hit = found && contains(value, len, pattern, pattern_len);
    free(value);
    if (hit) {
        static const char body[] = "Request blocked by the C filter.\n";
        static const char details[] = "c-filter-pattern";
        count_blocked();
        proxy_send_local_response(403, details, sizeof details - 1, body, sizeof body - 1,
                                  NULL, 0, -1);
        return ACTION_PAUSE;
    }
    static const char k[] = "x-c-filter", v[] = "passed";
    proxy_add_header_map_value(MAP_REQUEST_HEADERS, k, sizeof k - 1, v, sizeof v - 1);
    return ACTION_CONTINUE;
}

EXPORT(proxy_on_done) int proxy_on_done(uint32_t ctx) { return 1; }
EXPORT(proxy_on_log) void proxy_on_log(uint32_t ctx) {}
EXPORT(proxy_on_delete) void proxy_on_delete(uint32_t ctx) {}
