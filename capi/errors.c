/* Static strings of the ABI: error names and messages from the X-macro list
 * in asyncloop.h, and the version string. */
#include "asyncloop.h"

#define AL_STR2(x) #x
#define AL_STR(x) AL_STR2(x)

unsigned int aloop_version(void) { return ALOOP_VERSION_HEX; }

const char *aloop_version_string(void) {
  return AL_STR(ALOOP_VERSION_MAJOR) "." AL_STR(ALOOP_VERSION_MINOR) "." AL_STR(ALOOP_VERSION_PATCH);
}

const char *aloop_strerror(int code) {
  switch (code) {
  case 0:
    return "success";
#define AL_MSG(name, value, message) case value: return message;
    ALOOP_ERRNO_MAP(AL_MSG)
#undef AL_MSG
  }
  return "unknown error";
}

const char *aloop_err_name(int code) {
  switch (code) {
  case 0:
    return "ALOOP_OK";
#define AL_NAME(name, value, message) case value: return "ALOOP_" #name;
    ALOOP_ERRNO_MAP(AL_NAME)
#undef AL_NAME
  }
  return "ALOOP_EUNKNOWN";
}

/* 1 if code is 0 or a code of the header's list (capi/main.go, errCode). */
int al_errno_listed(int code) {
  switch (code) {
  case 0:
#define AL_LISTED(name, value, message) case value:
    ALOOP_ERRNO_MAP(AL_LISTED)
#undef AL_LISTED
    return 1;
  }
  return 0;
}
