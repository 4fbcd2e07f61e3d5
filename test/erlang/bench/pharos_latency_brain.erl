%% pharos_latency_brain: a Brain for the benchmarks that measures how long records took to reach it.
%%
%% It takes every delivery mode of docs/wire.md (payload binaries, term tuples, {Name, Binary}
%% subjects and acked batches, acknowledged with pharos_acked) and decodes each record with
%% binary_to_term(_, [safe]) as a Brain does. A metric whose value is a Unix time in microseconds
%% (above 1.0e15: what scripts/ingestload puts there with -stamp) gives a latency: the time of
%% receipt minus that value, on the same machine's clock. Every second a flusher appends one JSON
%% line to the output file with what arrived in the second before:
%%
%%   {"sec":1765000000,"records":10000,"n":10000,"hist":[[410,3],[420,17],...]}
%%
%% records counts every record, n those with a latency, and hist is a histogram of the latencies
%% in microseconds, each rounded down to three significant digits (1% resolution): the reader
%% merges the seconds it wants and takes percentiles (scripts/ingestload -latency-file).
%%
%%   erl -name brain@127.0.0.1 -setcookie C -pa EBIN -noshell \
%%       -eval 'pharos_latency_brain:start(pharos_brain, "/tmp/lat.jsonl")'
-module(pharos_latency_brain).
-export([start/2, init/3, flusher/2, bucket/1]).

-define(STAMP_MIN, 1.0e15).

start(Name, File) ->
    Parent = self(),
    Pid = spawn(fun() -> init(Parent, Name, File) end),
    receive {Pid, ready} -> {ok, Pid} after 5000 -> {error, timeout} end.

init(Parent, Name, File) ->
    process_flag(message_queue_data, off_heap),
    true = register(Name, self()),
    %% binary_to_term(_, [safe]) refuses atoms the node does not know yet: make the records' atoms.
    _ = [list_to_atom(A) || A <- ["metric", "alert", "gauge", "counter", "histogram", "info", "warning", "critical"]],
    Tab = ets:new(latency, [public, set, {write_concurrency, true}]),
    spawn_link(fun() -> {ok, Fd} = file:open(File, [append, raw, binary]), flusher(Tab, Fd) end),
    Parent ! {self(), ready},
    loop(Tab, pharos_acked:new()).

loop(Tab, Acked) ->
    receive
        Bin when is_binary(Bin) ->
            payload(Tab, Bin),
            loop(Tab, Acked);
        {pharos_batch, _, _, _, _} = Batch ->
            case pharos_acked:fold_batch(Batch, Acked, fun(P, A) -> payload(Tab, P), A end, nil) of
                {ok, Acked1, {ReplyTo, Ack}, nil} ->
                    ReplyTo ! Ack,
                    loop(Tab, Acked1);
                {error, _} ->
                    loop(Tab, Acked)
            end;
        {metric, _, _, _, _, _, _} = Rec ->
            record(Tab, Rec),
            loop(Tab, Acked);
        {Tag, Bin} when is_atom(Tag), is_binary(Bin) ->
            payload(Tab, Bin),
            loop(Tab, Acked);
        _Other ->
            loop(Tab, Acked)
    end.

payload(Tab, Bin) ->
    try binary_to_term(Bin, [safe]) of
        Rec -> record(Tab, Rec)
    catch
        error:badarg -> count(Tab, {os:system_time(second), records})
    end.

record(Tab, {metric, _Name, _Kind, Value, _Tags, _Ts, _Source}) when is_float(Value), Value > ?STAMP_MIN ->
    Now = os:system_time(microsecond),
    Sec = Now div 1000000,
    count(Tab, {Sec, records}),
    count(Tab, {Sec, bucket(Now - trunc(Value))});
record(Tab, _) ->
    count(Tab, {os:system_time(second), records}).

count(Tab, Key) -> ets:update_counter(Tab, Key, 1, {Key, 0}).

%% @doc Rounds a latency in microseconds down to three significant digits (negative: 0).
bucket(L) when L < 1000 -> max(L, 0);
bucket(L) -> Step = pow10(trunc(math:log10(L)) - 2), (L div Step) * Step.

pow10(0) -> 1;
pow10(N) -> 10 * pow10(N - 1).

%% @doc Every second, writes the second before the current one and deletes it.
flusher(Tab, Fd) ->
    timer:sleep(1000 - (os:system_time(millisecond) rem 1000) + 50),
    Sec = os:system_time(second) - 1,
    Rows = ets:match_object(Tab, {{'_', '_'}, '_'}),
    Done = [R || {{S, _}, _} = R <- Rows, S =< Sec],
    lists:foreach(fun({K, _}) -> ets:delete(Tab, K) end, Done),
    BySec = lists:foldl(fun({{S, K}, C}, M) -> maps:update_with(S, fun(L) -> [{K, C} | L] end, [{K, C}], M) end,
                        #{}, Done),
    Lines = [line(S, maps:get(S, BySec)) || S <- lists:sort(maps:keys(BySec))],
    ok = file:write(Fd, Lines),
    flusher(Tab, Fd).

line(Sec, Counts) ->
    Records = proplists:get_value(records, Counts, 0),
    Hist = lists:sort([{B, C} || {B, C} <- Counts, is_integer(B)]),
    N = lists:sum([C || {_, C} <- Hist]),
    Pairs = lists:join(",", [io_lib:format("[~b,~b]", [B, C]) || {B, C} <- Hist]),
    io_lib:format("{\"sec\":~b,\"records\":~b,\"n\":~b,\"hist\":[~s]}~n", [Sec, Records, N, Pairs]).
