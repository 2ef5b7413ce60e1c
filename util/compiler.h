/* Compiler attributes used across ferry. */
#ifndef FERRY_UTIL_COMPILER_H
#define FERRY_UTIL_COMPILER_H

/* On a function whose failure leaves state the caller must deal with (a
 * pump that can no longer be released, a shutdown that would wait
 * forever): ignoring its result is a compile error under -Werror. Where
 * ignoring is deliberate, write (void)f(). */
#define FERRY_MUST_CHECK __attribute__((warn_unused_result))

#endif
