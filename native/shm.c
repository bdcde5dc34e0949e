/*
 * Maps a POSIX shared-memory region (shm_open + mmap) into Node as an ArrayBuffer, for Triton's system
 * shared memory: the caller writes frames straight into the region and reads outputs as views of it.
 *
 * Built by scripts/build-native.mjs with a plain C compiler. It declares the few Node-API functions it
 * uses itself instead of including node_api.h: Node-API is a stable C ABI, and many machines that run
 * Node have no Node headers. The symbols are resolved from the node binary when the addon is loaded.
 */
#define _FILE_OFFSET_BITS 64 /* regions over 2 GiB on 32-bit systems too */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* napi_ok is 0 */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
typedef void (*napi_finalize)(napi_env env, void *data, void *hint);

extern napi_status napi_get_cb_info(napi_env, napi_callback_info, size_t *, napi_value *, napi_value *, void **);
extern napi_status napi_get_value_string_utf8(napi_env, napi_value, char *, size_t, size_t *);
extern napi_status napi_get_value_double(napi_env, napi_value, double *);
extern napi_status napi_get_value_bool(napi_env, napi_value, bool *);
extern napi_status napi_create_external_arraybuffer(napi_env, void *, size_t, napi_finalize, void *, napi_value *);
extern napi_status napi_create_function(napi_env, const char *, size_t, napi_callback, void *, napi_value *);
extern napi_status napi_set_named_property(napi_env, napi_value, const char *, napi_value);
extern napi_status napi_throw_error(napi_env, const char *, const char *);
extern napi_status napi_adjust_external_memory(napi_env, int64_t, int64_t *);
extern napi_status napi_get_typedarray_info(napi_env, napi_value, int *, size_t *, void **, napi_value *, size_t *);

/*
 * The mapping goes when the garbage collector frees the last view of it: no view can outlive it. The
 * mapped bytes are reported to V8 as external memory (and taken back here), so that regions dropped by
 * their owners are collected as promptly as ordinary buffers of that size: a removed region's pages stay
 * in RAM until it is unmapped.
 */
static void unmap(napi_env env, void *data, void *hint) {
  size_t n = (size_t)(uintptr_t)hint;
  int64_t total;
  munmap(data, n);
  napi_adjust_external_memory(env, -(int64_t)n, &total);
}

static napi_value fail(napi_env env, const char *what, const char *key) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s %s: %s", what, key, strerror(errno));
  napi_throw_error(env, "VASDK_SHM", msg);
  return NULL;
}

/* map(key: string, byteSize: number, create: boolean): ArrayBuffer */
static napi_value map_region(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char key[256];
  size_t keylen = 0;
  double size = 0;
  bool create = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc < 3 ||
      napi_get_value_string_utf8(env, argv[0], key, sizeof key, &keylen) != 0 ||
      napi_get_value_double(env, argv[1], &size) != 0 || napi_get_value_bool(env, argv[2], &create) != 0) {
    napi_throw_error(env, "VASDK_SHM", "map(key: string, byteSize: number, create: boolean)");
    return NULL;
  }
  if (keylen >= sizeof key - 1 || !(size > 0) || size > (double)SIZE_MAX) {
    napi_throw_error(env, "VASDK_SHM", "map: key too long or byteSize not positive");
    return NULL;
  }
  size_t n = (size_t)size;
  int fd = shm_open(key, O_RDWR | (create ? O_CREAT : 0), 0600);
  if (fd < 0) return fail(env, "cannot open shared memory", key);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return fail(env, "cannot stat shared memory", key);
  }
  /* macOS sizes a shared-memory object once only: leave one already of this size as it is. */
  if (create && (size_t)st.st_size != n && ftruncate(fd, (off_t)n) != 0) {
    close(fd);
    return fail(env, "cannot size shared memory", key);
  }
  /* Touching a page past the end of a smaller region would kill the process (SIGBUS): refuse. */
  if (!create && (size_t)st.st_size < n) {
    close(fd);
    errno = EINVAL;
    return fail(env, "shared memory is smaller than asked", key);
  }
#ifdef __linux__
  /*
   * Reserve the pages now. tmpfs sizes a file without allocating it, and a page that a full /dev/shm
   * (64 MiB in a default Docker container) cannot supply is a SIGBUS when first written through the
   * mapping; here it is an ENOSPC error instead.
   */
  if (create) {
    int err = posix_fallocate(fd, 0, (off_t)n);
    if (err != 0 && err != EOPNOTSUPP && err != ENOSYS) {
      close(fd);
      errno = err;
      return fail(env, "cannot reserve shared memory", key);
    }
  }
#endif
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd); /* the mapping keeps the region */
  if (p == MAP_FAILED) return fail(env, "cannot map shared memory", key);
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, n, unmap, (void *)(uintptr_t)n, &ab) != 0) {
    munmap(p, n);
    napi_throw_error(env, "VASDK_SHM", "cannot make an ArrayBuffer over the mapping");
    return NULL;
  }
  int64_t total;
  napi_adjust_external_memory(env, (int64_t)n, &total);
  return ab;
}

/* unlink(key: string): removes the region's name; mappings stay valid until unmapped. */
static napi_value unlink_region(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char key[256];
  size_t keylen = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc < 1 ||
      napi_get_value_string_utf8(env, argv[0], key, sizeof key, &keylen) != 0) {
    napi_throw_error(env, "VASDK_SHM", "unlink(key: string)");
    return NULL;
  }
  if (shm_unlink(key) != 0 && errno != ENOENT) return fail(env, "cannot remove shared memory", key);
  return NULL;
}

/*
 * Below this a copy stays in the ordinary cache path: a frame that fits in a core's L2 is as likely to be read soon as
 * to go to the server, and the fence costs more than it saves.
 */
#define STREAM_MIN (1024 * 1024)

/*
 * copy(dst: Uint8Array, src: Uint8Array): src into dst (as many bytes as both hold), for a frame written
 * into a region that the server reads next, from another core. Large copies use non-temporal stores:
 * an ordinary store first reads each destination line for ownership, and those lines are in the server's
 * cache (it read the previous frame there) or evicted, so the copy pays a snoop or a memory read per line
 * and pushes the caller's own data out of its cache. Measured on the bench's 960x960x3 frame (2.76 MB)
 * against a live server: 0.31 ms of client CPU per request with streaming stores against 0.32 to 0.52
 * with TypedArray.set or memcpy (never more). Elsewhere (no SSE2, small copies) it is memcpy.
 */
static napi_value copy_bytes(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], ab;
  int type;
  size_t dn = 0, sn = 0, off;
  void *dp = NULL, *sp = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc < 2 ||
      napi_get_typedarray_info(env, argv[0], &type, &dn, &dp, &ab, &off) != 0 || type != 1 /* napi_uint8_array */ ||
      napi_get_typedarray_info(env, argv[1], &type, &sn, &sp, &ab, &off) != 0 || type != 1) {
    napi_throw_error(env, "VASDK_SHM", "copy(dst: Uint8Array, src: Uint8Array)");
    return NULL;
  }
  size_t n = sn < dn ? sn : dn;
  uint8_t *d = dp;
  const uint8_t *s = sp;
  if (n == 0) return NULL;
  /* Overlapping views (a region copied into itself) take memmove's careful path. */
  if (d < s + n && s < d + n) {
    memmove(d, s, n);
    return NULL;
  }
#if defined(__SSE2__)
  if (n >= STREAM_MIN) {
    size_t head = (16 - ((uintptr_t)d & 15)) & 15, i;
    memcpy(d, s, head);
    for (i = head; i + 64 <= n; i += 64) {
      __m128i a = _mm_loadu_si128((const __m128i *)(s + i)), b = _mm_loadu_si128((const __m128i *)(s + i + 16));
      __m128i c = _mm_loadu_si128((const __m128i *)(s + i + 32)), e = _mm_loadu_si128((const __m128i *)(s + i + 48));
      _mm_stream_si128((__m128i *)(d + i), a);
      _mm_stream_si128((__m128i *)(d + i + 16), b);
      _mm_stream_si128((__m128i *)(d + i + 32), c);
      _mm_stream_si128((__m128i *)(d + i + 48), e);
    }
    _mm_sfence(); /* streaming stores are weakly ordered: visible before the request leaves */
    memcpy(d + i, s + i, n - i);
    return NULL;
  }
#endif
  memcpy(d, s, n);
  return NULL;
}

napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "map", (size_t)-1, map_region, NULL, &fn) == 0) napi_set_named_property(env, exports, "map", fn);
  if (napi_create_function(env, "copy", (size_t)-1, copy_bytes, NULL, &fn) == 0) napi_set_named_property(env, exports, "copy", fn);
  if (napi_create_function(env, "unlink", (size_t)-1, unlink_region, NULL, &fn) == 0) napi_set_named_property(env, exports, "unlink", fn);
  return exports;
}

int32_t node_api_module_get_api_version_v1(void) { return 8; }
