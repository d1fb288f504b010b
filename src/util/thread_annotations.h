// Clang Thread Safety Analysis attributes (-Wthread-safety), as leveldb's
// port/thread_annotations.h: they state which mutex guards what, and clang
// checks it at compile time (tools/thread_safety.sh). Other compilers see
// nothing.
#pragma once

#if defined(__clang__)
#define GRADIENTD_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define GRADIENTD_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) GRADIENTD_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY GRADIENTD_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) GRADIENTD_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) GRADIENTD_THREAD_ANNOTATION(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) GRADIENTD_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) GRADIENTD_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define REQUIRES(...) GRADIENTD_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) GRADIENTD_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) GRADIENTD_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) GRADIENTD_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) GRADIENTD_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) GRADIENTD_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) GRADIENTD_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) GRADIENTD_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) GRADIENTD_THREAD_ANNOTATION(assert_capability(x))
#define RETURN_CAPABILITY(x) GRADIENTD_THREAD_ANNOTATION(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS GRADIENTD_THREAD_ANNOTATION(no_thread_safety_analysis)
