#pragma once
#include "kernels/status.hpp"
