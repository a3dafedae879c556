-- wrk script: send GET requests to the paths listed in a file, one per line,
-- in rotation, and print the run's figures as one JSON line when it ends.
--
-- Usage: wrk -s rotate.lua URL -- PATHS_FILE

local paths = {}
local position = 0
local thread_count = 0

function setup(thread)
   thread:set("thread_index", thread_count)
   thread_count = thread_count + 1
end

function init(args)
   local file = args[1]
   if file == nil then
      error("missing argument: the file of request paths")
   end
   for line in io.lines(file) do
      if #line > 0 then
         paths[#paths + 1] = line
      end
   end
   if #paths == 0 then
      error("no request paths in " .. file)
   end

   -- Threads start at different offsets, so they do not request the same
   -- rows in lockstep.
   local index = thread_index or 0
   position = (index * 7919) % #paths
end

function request()
   position = position % #paths + 1
   return wrk.format("GET", paths[position])
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      "BENCH_RESULT {\"requests\": %d, \"duration_us\": %d, " ..
      "\"p50_us\": %.0f, \"p99_us\": %.0f, \"connect_errors\": %d, " ..
      "\"read_errors\": %d, \"write_errors\": %d, \"status_errors\": %d, " ..
      "\"timeouts\": %d}\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(99),
      errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
