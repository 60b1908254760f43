// Where finished traces go. Exporters are called on weft's export thread (ExportQueue), one
// batch at a time, and say whether a failed batch is worth retrying.
#pragma once

#include "export/export_queue.h"
