# man/local.mk - manual pages

dist_man_MANS += \
	man/diplomd.8 \
	man/diplomctl.8 \
	man/diplom-loadgen.1
