// The plugin's entry point: one line naming the services this shared object provides.
#include "textstats.hpp"

COURIER_PLUGIN(textstats::TextStats)
