# Makefile - builds Roomcast, runs its tests and drives the development stack.
#
# For developers and for CI (.ci/run). One plain GNU Makefile with no
# configure step: it expects Debian 12 with the packages that
# deploy/install-deps.sh installs (`make deps`). Not a service manager for
# production; deploy/ holds the configurations for that.
#
# Sources are found by wildcard, so a new file needs no edit here:
#   lib/*.c               -> build/<variant>/libroomcast.a
#   fcgi/*.c              -> bin/roomcast-fcgi
#   ws/*.c (when present) -> bin/roomcast-ws
#   tests/unit/test_*.c   -> build/<variant>/tests/test_*, one program each,
#                            linked with the library and with the fcgi/ and
#                            ws/ objects other than main.o, so the parsers
#                            that live there can be unit-tested too.
# Header dependencies are tracked by the compiler (-MMD).
#
# Targets: all (default), deps, run, stop, status, dburl, test, unit,
#          install, clean, bench.
# Settings:
#   WERROR=1                    warnings become errors (CI sets it)
#   SANITIZE=address,undefined  an instrumented variant in build/san, bin/san
#   STACK_SANITIZE=1            make test also runs the integration tests
#                               against instrumented workers (CI sets it)
#   CFLAGS=...                  replaces the optimisation flags (-O2 -g) only
#   PREFIX=/usr/local DESTDIR=  where `make install` puts files
#   PORT, ROOMCAST_WORKERS, LIGHTTPD_WORKERS, ROOMCAST_FCGI_BIN
#                               reach deploy/devstack.sh (run, test, bench)

PREFIX ?= /usr/local
DESTDIR ?=
SANITIZE ?=
WERROR ?=
PKG_CONFIG ?= pkg-config
AR ?= ar

# The sanitizers `make test` runs the unit tests under, beside the plain build.
TEST_SANITIZE := address,undefined

# --- flags ------------------------------------------------------------------

CFLAGS ?= -O2 -g
RC_CPPFLAGS := -D_GNU_SOURCE -Ilib
RC_CFLAGS := -std=c11 -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes \
    -Wshadow -Wpointer-arith -Wformat=2 -Wundef -Wwrite-strings
ifeq ($(WERROR),1)
RC_CFLAGS += -Werror
endif

# pkg-config per package, so one missing .pc file (older libfcgi-dev shipped
# none) costs only that package its flags and falls back to the plain -l.
pkg_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pkg_libs = $(or $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null),$(2))

PKG_CPPFLAGS := $(call pkg_cflags,fcgi) $(call pkg_cflags,jansson) \
    $(or $(call pkg_cflags,libpq),-I/usr/include/postgresql)
# libcrypto is there for SHA-256 and base64; --as-needed drops any library
# that no object uses, so listing it costs nothing when unused.
LIBS := $(call pkg_libs,fcgi,-lfcgi) $(call pkg_libs,libpq,-lpq) \
    $(call pkg_libs,jansson,-ljansson) $(call pkg_libs,libcrypto,-lcrypto) -lm

ifeq ($(strip $(SANITIZE)),)
VARIANT := default
BINDIR := bin
SAN_FLAGS :=
else
VARIANT := san
BINDIR := bin/san
# No recovery: a sanitizer report must fail the test that triggered it, and
# UBSan alone would only print and carry on.
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all \
    -fno-omit-frame-pointer
endif

ALL_CPPFLAGS := $(RC_CPPFLAGS) $(PKG_CPPFLAGS) $(CPPFLAGS)
ALL_CFLAGS := $(CFLAGS) $(RC_CFLAGS) $(SAN_FLAGS)
# The link lines also get ALL_CFLAGS, which carries the sanitizer flags.
ALL_LDFLAGS := -Wl,--as-needed $(LDFLAGS)

# --- files ------------------------------------------------------------------

BUILD := build/$(VARIANT)
obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

LIB_SRCS := $(wildcard lib/*.c)
FCGI_SRCS := $(wildcard fcgi/*.c)
WS_SRCS := $(wildcard ws/*.c)
TEST_SRCS := $(wildcard tests/unit/test_*.c)
INTEGRATION_TESTS := $(wildcard tests/integration/*.t)

LIB_OBJS := $(call obj,$(LIB_SRCS))
FCGI_OBJS := $(call obj,$(FCGI_SRCS))
WS_OBJS := $(call obj,$(WS_SRCS))
TEST_OBJS := $(call obj,$(TEST_SRCS))
FCGI_PART_OBJS := $(filter-out $(BUILD)/fcgi/main.o,$(FCGI_OBJS))
WS_PART_OBJS := $(filter-out $(BUILD)/ws/main.o,$(WS_OBJS))

LIBROOMCAST := $(BUILD)/libroomcast.a
LIBFCGI_PART := $(BUILD)/libroomcast-fcgi.a
LIBWS_PART := $(BUILD)/libroomcast-ws.a

PROGRAMS := $(if $(FCGI_SRCS),$(BINDIR)/roomcast-fcgi) \
    $(if $(WS_SRCS),$(BINDIR)/roomcast-ws)
TEST_LIBS := $(if $(FCGI_PART_OBJS),$(LIBFCGI_PART)) \
    $(if $(WS_PART_OBJS),$(LIBWS_PART)) $(LIBROOMCAST)
TEST_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRCS))

# The unit test programs of each variant, for `make test`, which runs both.
UNIT_DEFAULT := $(patsubst tests/unit/%.c,build/default/tests/%,$(TEST_SRCS))
UNIT_SAN := $(patsubst tests/unit/%.c,build/san/tests/%,$(TEST_SRCS))

# The compile and link command lines, kept in a file that changes only when
# they do: every object depends on it, so switching WERROR or CFLAGS
# rebuilds what was built with the old flags.
FLAGS_FILE := $(BUILD)/flags

STACK := deploy/devstack.sh
# Compiled tests are run as they are (--exec ''); the integration tests go
# through perl, which hands a file whose #! line names another interpreter
# to that interpreter.
PROVE_UNIT := prove --exec ''
PROVE_INTEGRATION := prove

# make run and make bench use the worker of the variant being built.
ROOMCAST_FCGI_BIN ?= $(CURDIR)/$(BINDIR)/roomcast-fcgi
export ROOMCAST_FCGI_BIN

# --- build ------------------------------------------------------------------

.PHONY: all programs tests deps run stop status dburl test unit install \
    clean bench FORCE
.DELETE_ON_ERROR:

all: programs tests

programs: $(PROGRAMS)
ifeq ($(FCGI_SRCS),)
	@echo "make: fcgi/ has no .c files yet, so there is no roomcast-fcgi"
endif

tests: $(TEST_BINS)

$(FLAGS_FILE): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS)' \
	    '$(ALL_LDFLAGS) $(LIBS)' > $@.new
	@if cmp -s $@.new $@; then rm -f $@.new; else mv -f $@.new $@; fi

$(BUILD)/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# Each archive is rebuilt from scratch so that the object of a deleted
# source file does not linger in it.
$(LIBROOMCAST): $(LIB_OBJS)
$(LIBFCGI_PART): $(FCGI_PART_OBJS)
$(LIBWS_PART): $(WS_PART_OBJS)
$(LIBROOMCAST) $(LIBFCGI_PART) $(LIBWS_PART):
	@mkdir -p $(@D)
	@rm -f $@
	$(AR) rcs $@ $^

$(BINDIR)/roomcast-fcgi: $(FCGI_OBJS) $(LIBROOMCAST) $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $(FCGI_OBJS) $(LIBROOMCAST) \
	    $(LIBS)

$(BINDIR)/roomcast-ws: $(WS_OBJS) $(LIBROOMCAST) $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $(WS_OBJS) $(LIBROOMCAST) \
	    $(LIBS)

$(TEST_BINS): $(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(TEST_LIBS) \
    $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(TEST_LIBS) $(LIBS)

-include $(LIB_OBJS:.o=.d) $(FCGI_OBJS:.o=.d) $(WS_OBJS:.o=.d) \
    $(TEST_OBJS:.o=.d)

# --- tests ------------------------------------------------------------------

# The unit tests of the variant selected by SANITIZE.
unit: tests
ifeq ($(TEST_BINS),)
	@echo "make: no unit tests in tests/unit yet"
else
	$(PROVE_UNIT) $(TEST_BINS)
endif

# Every stage runs even when an earlier one failed, so one run shows all
# failures; the exit status is non-zero when any stage failed. The
# development stack is started only if it is not running, and stopped
# afterwards only if this run started it (devstack.sh with).
test: deps
	@$(MAKE) --no-print-directory SANITIZE= all
	@$(MAKE) --no-print-directory SANITIZE=$(TEST_SANITIZE) all
	@failed=''; \
	echo '== unit tests, plain and with -fsanitize=$(TEST_SANITIZE)'; \
	if [ -z '$(strip $(TEST_SRCS))' ]; then \
	    echo 'no unit tests in tests/unit yet'; \
	else \
	    $(PROVE_UNIT) $(UNIT_DEFAULT) $(UNIT_SAN) || failed="$$failed unit"; \
	fi; \
	echo '== integration tests against the development stack'; \
	if [ -z '$(strip $(INTEGRATION_TESTS))' ]; then \
	    echo 'no integration tests in tests/integration yet'; \
	else \
	    ROOMCAST_FCGI_BIN='$(CURDIR)/bin/roomcast-fcgi' $(STACK) with \
	        $(PROVE_INTEGRATION) $(INTEGRATION_TESTS) \
	        || failed="$$failed integration"; \
	fi; \
	if [ -n '$(STACK_SANITIZE)' ]; then \
	    echo '== integration tests again, workers built with -fsanitize=$(TEST_SANITIZE)'; \
	    bash tests/sanitized-stack.sh || failed="$$failed integration-sanitized"; \
	fi; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed"; exit 1; fi

# The load tool of the benchmark. It has its own sources and links nothing
# of Roomcast: it measures the servers from outside, over HTTP.
LOAD_SRCS := $(wildcard tests/load/*.c)
LOAD_BIN := $(BUILD)/load/roomcast-load

$(LOAD_BIN): $(LOAD_SRCS) $(wildcard tests/load/*.h) $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) -D_GNU_SOURCE $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $(LOAD_SRCS) -lm

# tests/bench.sh starts a stack of its own in state/bench (more lighttpd
# processes and open files than `make run` needs, on ports of its own) and
# an nginx with Nchan beside it, so it neither disturbs nor is disturbed by
# a running development stack. QUICK=1 runs every scenario smaller.
bench: deps
	@$(MAKE) --no-print-directory programs $(LOAD_BIN)
	@ROOMCAST_LOAD_BIN='$(CURDIR)/$(LOAD_BIN)' bash tests/bench.sh

# --- the development stack --------------------------------------------------

deps:
	@deploy/install-deps.sh

# The build runs in a second make so that pkg-config is asked again after
# deps may have installed the .pc files.
run: deps
	@$(MAKE) --no-print-directory programs
	@$(STACK) run

stop:
	@$(STACK) stop

status:
	@$(STACK) status

# Prints the conninfo alone: psql "$(make -s dburl)"
dburl:
	@$(STACK) dburl

# --- install, clean ---------------------------------------------------------

SHARE := $(DESTDIR)$(PREFIX)/share/roomcast

# deploy/ and sql/ keep their layout under share/roomcast, so a script that
# finds ../sql next to itself works the same installed as in the checkout.
# The development stack's files work only in a checkout and stay out.
DEV_ONLY := deploy/devstack.sh deploy/lighttpd-dev.conf
SHARED_FILES := $(filter-out $(DEV_ONLY),$(wildcard sql/*.sql deploy/*))

install: programs
	install -d '$(DESTDIR)$(PREFIX)/bin' '$(SHARE)/sql' '$(SHARE)/deploy'
	@set -e; for f in $(PROGRAMS); do \
	    echo "install $$f"; \
	    install -m 0755 "$$f" '$(DESTDIR)$(PREFIX)/bin/'; \
	done
	@set -e; for f in $(SHARED_FILES); do \
	    [ -f "$$f" ] || continue; \
	    if [ -x "$$f" ]; then mode=0755; else mode=0644; fi; \
	    echo "install $$f"; \
	    install -m "$$mode" "$$f" '$(SHARE)/'"$$(dirname "$$f")/"; \
	done
	@set -e; if [ -d www ]; then \
	    find www -type f | while IFS= read -r f; do \
	        echo "install $$f"; \
	        install -D -m 0644 "$$f" '$(SHARE)/'"$$f"; \
	    done; \
	fi

# state/ is left alone: it holds the development database. Remove it by
# hand after `make stop` to start from an empty database.
clean:
	rm -rf build bin
