// Ubuzima Sync — MIT licence.
// Umbrella header of the C++ client API.
#pragma once

#include "ubuzima/database.hpp"
#include "ubuzima/sync/status.hpp"
#include "ubuzima/transport.hpp"
