#include "core/thread_name.h"

#include <pthread.h>

#include <cstring>
#include <string>

namespace quire {

void NameThisThread(const char* name) {
  // pthread_setname_np refuses (ERANGE) a name of 16 characters or more: cut it instead.
  std::string cut(name, strnlen(name, 15));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace quire
