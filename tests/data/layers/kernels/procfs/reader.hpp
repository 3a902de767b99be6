#pragma once
#include "../status.hpp"
#include <hwloc.h>
