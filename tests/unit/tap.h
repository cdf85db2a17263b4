/* Minimal table-driven TAP runner shared by the C unit tests.
 *
 * Each test file defines `static const struct tap_test tests[]` ending with
 * {NULL, NULL} and calls tap_main(tests).  Inside a test, use TAP_CHECK();
 * a test fails if any check fails.  Output is TAP version 13, which meson's
 * `test(..., protocol: 'tap')` reads. */
#ifndef GATHERD_TAP_H
#define GATHERD_TAP_H

#include <stdio.h>
#include <string.h>

struct tap_test {
	const char *name;
	void (*fn)(void);
};

static int tap_failed_checks;

#define TAP_CHECK(cond)                                                      \
	do {                                                                 \
		if (!(cond)) {                                               \
			tap_failed_checks++;                                 \
			printf("# %s:%d: check failed: %s\n", __FILE__,      \
			       __LINE__, #cond);                             \
		}                                                            \
	} while (0)

#define TAP_CHECK_STR(a, b)                                                  \
	do {                                                                 \
		const char *tap_a_ = (a), *tap_b_ = (b);                     \
		if (tap_a_ == NULL || tap_b_ == NULL ||                      \
		    strcmp(tap_a_, tap_b_) != 0) {                           \
			tap_failed_checks++;                                 \
			printf("# %s:%d: \"%s\" != \"%s\"\n", __FILE__,      \
			       __LINE__, tap_a_ ? tap_a_ : "(null)",         \
			       tap_b_ ? tap_b_ : "(null)");                  \
		}                                                            \
	} while (0)

static inline int tap_main(const struct tap_test *tests)
{
	int n = 0, bad = 0;

	for (const struct tap_test *t = tests; t->name != NULL; t++)
		n++;
	printf("TAP version 13\n1..%d\n", n);
	for (int i = 0; i < n; i++) {
		int before = tap_failed_checks;

		tests[i].fn();
		if (tap_failed_checks != before) {
			bad++;
			printf("not ok %d - %s\n", i + 1, tests[i].name);
		} else {
			printf("ok %d - %s\n", i + 1, tests[i].name);
		}
		fflush(stdout);
	}
	return bad ? 1 : 0;
}

#endif
