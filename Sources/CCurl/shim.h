#ifndef LLMQ_CCURL_SHIM_H
#define LLMQ_CCURL_SHIM_H

#include <curl/curl.h>

#endif
