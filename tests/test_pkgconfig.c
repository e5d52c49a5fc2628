/* test_pkgconfig.c - the clloss.pc of the build tree works: a program
 * compiled and linked with `pkg-config --cflags --libs clloss`
 * (PKG_CONFIG_PATH = the build folder) includes clloss.h, links the
 * library built there, and runs. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/testutil.h"

/* The test program is built the way this runner was: a library built with
 * a sanitizer needs its runtime in the program too. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZE "-fsanitize=address,undefined"
#elif defined(__SANITIZE_THREAD__)
#define SANITIZE "-fsanitize=thread"
#else
#define SANITIZE ""
#endif

/* Runs a shell command; returns its exit status (-1 if it did not exit). */
static int shell(const char *command) {
  int status = system(command);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_pkgconfig_build_tree(void) {
  if (shell("command -v pkg-config >/dev/null 2>&1 && "
            "command -v cc >/dev/null 2>&1") != 0) {
    tu_skip("pkg-config or cc is not installed");
    return;
  }
  char dir[] = "/tmp/clloss-pc-XXXXXX";
  CU_ASSERT_TRUE_FATAL(mkdtemp(dir) != NULL);
  char src[64], exe[64], cmd[2048];
  snprintf(src, sizeof src, "%s/main.c", dir);
  snprintf(exe, sizeof exe, "%s/main", dir);
  FILE *f = fopen(src, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("#include <clloss.h>\n#include <string.h>\n"
        "int main(void) {\n"
        "  return strcmp(clloss_status_name(CLLOSS_INVALID_TARGET),\n"
        "                \"CLLOSS_INVALID_TARGET\") != 0;\n"
        "}\n",
        f);
  fclose(f);
  snprintf(cmd, sizeof cmd,
           "PKG_CONFIG_PATH='%s' && export PKG_CONFIG_PATH && "
           "cc %s -o '%s' '%s' $(pkg-config --cflags --libs clloss) && "
           "LD_LIBRARY_PATH=\"$(pkg-config --variable=libdir clloss)\" '%s'",
           CLLOSS_BINARY_DIR, SANITIZE, exe, src, exe);
  int rc = shell(cmd);
  if (rc != 0)
    printf("\n  `%s` exited with %d", cmd, rc);
  CU_ASSERT_EQUAL(rc, 0);
  unlink(exe);
  unlink(src);
  rmdir(dir);
}

int test_pkgconfig_register(void) {
  TU_SUITE("pkgconfig", NULL, NULL, TU_TEST(test_pkgconfig_build_tree));
}
