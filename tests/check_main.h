/* check_main.h - one main for every Check suite: TAP on stdout */
#ifndef DIPLOM_CHECK_MAIN_H
#define DIPLOM_CHECK_MAIN_H

#include <stdlib.h>

#include <check.h>

#define CHECK_MAIN(suite_fn)						\
	int								\
	main(void)							\
	{								\
		SRunner *sr = srunner_create(suite_fn());		\
		int failed;						\
									\
		srunner_set_tap(sr, "/dev/stdout");			\
		srunner_run_all(sr, CK_SILENT);				\
		failed = srunner_ntests_failed(sr);			\
		srunner_free(sr);					\
		return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;	\
	}

#endif
