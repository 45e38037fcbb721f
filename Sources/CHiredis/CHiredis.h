#include <sys/types.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
