%% @doc The reference Brain's statistics, in a public ETS table owned by this process so that they
%% survive crashes of the Brain server. Only the Brain server writes records; the control port reads.
%%
%% Sequence tracking, per source (the record's Source field), of the `seq` tag: `next` is the length
%% of the contiguous prefix 0..next-1 seen, `ahead` the seen numbers above it. A number seen before
%% is a duplicate; one below the highest seen so far is a reorder; `missing` counts the numbers in
%% 0..max_seq never seen.
%%
%% With a state_dir, the table and the acked-mode state are written to state_dir/brain.state (write
%% to a temporary file, then rename) before every acknowledgement, and loaded at start, so a Brain
%% node killed with -9 and restarted keeps its deduplication and its counts of acknowledged records.
-module(pharos_brain_store).
-behaviour(gen_server).
-export([start_link/1, record/2, invalid/2, stats/0, reset/0, last/1,
         acked_state/0, set_acked_state/1, acked_batch/1, get_delay/1, set_delay/1, brain_starts/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(T, pharos_brain_stats).
-define(AHEAD, pharos_brain_ahead). % {{Source, Seq}} for the seen numbers above a source's `next`
-define(LAST_MAX, 100).

%% An acked batch's accounting, gathered by acked_batch/1 in the caller and applied to the table
%% once per batch (flush_batch/1) with the same result as record/2 and invalid/2 for each payload:
%% counts, invalid reasons, valid records without a `seq` tag per source, the last records, and
%% runs of consecutive `seq` tags of one source (`runs` holds the finished ones, newest first).
%% While a batch is read, `alerts` is 0 and the newest valid records are kept, newest first, in
%% `last` (`nlast` of them) and, once that holds ?LAST_MAX, in `prev` (?LAST_MAX of them): O(1)
%% per record and at most 2 * ?LAST_MAX kept. summary/1 leaves the last ?LAST_MAX in `last`.
%% `valid` is the last valid record read, for pharos_brain_wire:validate/2.
-record(batch, {n = 0, metrics = 0, alerts = 0, last = [], nlast = 0, prev = [], run = none,
                runs = [], no_seq = #{}, invalid = [], valid = none}).

start_link(StateDir) -> gen_server:start_link({local, ?MODULE}, ?MODULE, StateDir, []).

init(StateDir) ->
    ets:new(?T, [named_table, public, set, {write_concurrency, true}]),
    ets:new(?AHEAD, [named_table, public, set]),
    load(StateDir),
    ets:insert(?T, {state_dir, StateDir}),
    {ok, StateDir}.

handle_call({acked_batch, SourceId, Next0, Next1, Summary}, _From, S) ->
    case acked_next(SourceId) of
        Next0 ->
            flush_batch(Summary),
            ets:insert(?T, {{acked, SourceId}, Next1}),
            save(),   % persisted before the ack goes out
            {reply, ok, S};
        _ ->
            {reply, stale, S}
    end;
handle_call({flush, Summary}, _From, S) ->
    flush_batch(Summary),
    {reply, ok, S};
handle_call(stats, _From, S) -> {reply, stats_now(), S};
handle_call(_, _From, S) -> {reply, ok, S}.
handle_cast(_, S) -> {noreply, S}.
handle_info(_, S) -> {noreply, S}.

bump(Key) -> ets:update_counter(?T, Key, 1, {Key, 0}).

%% @doc Count a valid record received in Mode.
record(Mode, Rec) ->
    bump(received),
    bump({mode, Mode}),
    bump({type, element(1, Rec)}),
    remember(Rec),
    Source = pharos_brain_wire:source(Rec),
    case pharos_brain_wire:seq(Rec) of
        none -> bump({no_seq, Source});
        Seq -> track(Source, Seq)
    end.

remember(Rec) ->
    N = bump(last_n),
    ets:insert(?T, {{last, N rem ?LAST_MAX}, N, Rec}).

%% @doc The last (at most 100) valid records, oldest first.
last(Max) ->
    All = [{N, R} || {{last, _}, N, R} <- ets:tab2list(?T)],
    [R || {_, R} <- lists:nthtail(max(0, length(All) - Max), lists:keysort(1, All))].

track(Source, Seq) ->
    {Recv, Uniq, Dup, Reord, Next, Max} =
        case ets:lookup(?T, {seq, Source}) of
            [{_, V}] -> V;
            [] -> {0, 0, 0, 0, 0, -1}
        end,
    Dupe = Seq < Next orelse ets:member(?AHEAD, {Source, Seq}),
    V1 = if
             Dupe -> {Recv + 1, Uniq, Dup + 1, Reord, Next, Max};
             true ->
                 Reord1 = if Seq < Max -> Reord + 1; true -> Reord end,
                 Next1 = advance(Source, Seq, Next),
                 {Recv + 1, Uniq + 1, Dup, Reord1, Next1, max(Max, Seq)}
         end,
    ets:insert(?T, {{seq, Source}, V1}).

%% Every step is O(1) per record: the seen numbers above `next` live in their own table.
advance(Source, Seq, Next) when Seq =:= Next -> absorb(Source, Next + 1);
advance(Source, Seq, Next) -> ets:insert(?AHEAD, {{Source, Seq}}), Next.

absorb(Source, Next) ->
    case ets:take(?AHEAD, {Source, Next}) of
        [_] -> absorb(Source, Next + 1);
        [] -> Next
    end.

%% @doc Count an invalid message with its reason.
invalid(Mode, Reason) ->
    bump(invalid),
    bump({invalid_mode, Mode}),
    bump({invalid_reason, Reason}).

%% @doc Process an acked-mode batch (pharos_acked:fold_batch/4: each new payload is decoded,
%% validated and counted) and persist the new acked state, atomically with respect to crashes of
%% the caller. Returns {ok, {ReplyTo, Ack}} for the caller to send, or {error, Reason}.
%%
%% The payloads are decoded and summed up in the caller (the Brain server), without touching the
%% table; one call to this process then applies the summary and the new NextSeq together. A crash
%% of the caller before that call counts nothing and leaves NextSeq where it was (the resend is
%% processed whole); once the call is made, this process finishes it whatever becomes of the
%% caller. The summary was computed against the NextSeq read from the table: if that changed in
%% between (a reset, or the call of a Brain server that was killed during it, applied only after
%% its restarted successor read the table), nothing is applied and the batch is processed again.
acked_batch({pharos_batch, _, SourceId, _, _} = Batch) when is_binary(SourceId) ->
    case pharos_brain_cluster:store() of
        mnesia -> acked_batch_mnesia(Batch);
        local -> acked_batch_local(Batch)
    end;
acked_batch(_) -> {error, bad_batch}.

%% With the cluster store (pharos_brain_cluster): the batch's per-key accounting and its NextSeq
%% are one mnesia transaction (pharos_acked:commit_batch/5), which returns once every running
%% Brain node has both; this node's own counts are added afterwards (they are this node's share,
%% and a node killed in between misses that batch in them, never in the cluster's tables).
acked_batch_mnesia(Batch) ->
    Store = pharos_acked:new(pharos_acked_mnesia, none),
    Apply = fun(Acc) ->
                    Sum = summary(Acc),
                    pharos_brain_cluster:apply_runs(lists:reverse(Sum#batch.runs)),
                    Sum
            end,
    case pharos_acked:commit_batch(Batch, Store, fun batch_payload/2, #batch{}, Apply) of
        {ok, _, Ack, none} -> {ok, Ack};
        {ok, _, Ack, Sum} ->
            ok = gen_server:call(?MODULE, {flush, Sum}, infinity),
            {ok, Ack};
        {error, _} = E -> E
    end.

acked_batch_local({pharos_batch, _, SourceId, _, _} = Batch) ->
    %% Only this source's NextSeq matters: fold_batch/4 gets a state of that one entry.
    Next0 = acked_next(SourceId),
    case pharos_acked:fold_batch(Batch, #{SourceId => Next0}, fun batch_payload/2, #batch{}) of
        {ok, _, {_, {pharos_ack, SourceId, Next1}} = Ack, Acc} ->
            case gen_server:call(?MODULE, {acked_batch, SourceId, Next0, Next1, summary(Acc)}, infinity) of
                ok -> {ok, Ack};
                stale -> acked_batch_local(Batch)
            end;
        {error, _} = E -> E
    end.

batch_payload(Bin, B) ->
    try binary_to_term(Bin, [safe]) of
        Rec ->
            case pharos_brain_wire:validate(Rec, B#batch.valid) of
                ok -> batch_record(Rec, B);
                {error, Reason} -> B#batch{invalid = [Reason | B#batch.invalid]}
            end
    catch error:badarg -> B#batch{invalid = [bad_etf | B#batch.invalid]}
    end.

batch_record(Rec, #batch{last = L, nlast = ?LAST_MAX} = B) ->
    batch_record(Rec, B#batch{last = [], nlast = 0, prev = L});
batch_record(Rec, #batch{n = N, metrics = M, last = L0, nlast = NL, run = Run, runs = Runs} = B) ->
    M1 = case element(1, Rec) of metric -> M + 1; alert -> M end,
    L = [Rec | L0],
    case pharos_brain_wire:seq(Rec) of
        none ->
            Source = pharos_brain_wire:source(Rec),
            NoSeq = maps:update_with(Source, fun(K) -> K + 1 end, 1, B#batch.no_seq),
            B#batch{n = N + 1, valid = Rec, metrics = M1, last = L, nlast = NL + 1, no_seq = NoSeq};
        Seq ->
            Source = pharos_brain_wire:source(Rec),
            case Run of
                {Source, First, K} when Seq =:= First + K ->
                    B#batch{n = N + 1, valid = Rec, metrics = M1, last = L, nlast = NL + 1, run = {Source, First, K + 1}};
                none ->
                    B#batch{n = N + 1, valid = Rec, metrics = M1, last = L, nlast = NL + 1, run = {Source, Seq, 1}};
                _ ->
                    B#batch{n = N + 1, valid = Rec, metrics = M1, last = L, nlast = NL + 1, run = {Source, Seq, 1},
                            runs = [Run | Runs]}
            end
    end.

%% What the store needs of a batch's accounting: the runs in order, the last records only.
summary(#batch{n = N, metrics = M, last = L, nlast = NL, prev = P, run = Run, runs = Runs} = B) ->
    B#batch{alerts = N - M, last = L ++ lists:sublist(P, ?LAST_MAX - NL), nlast = min(N, ?LAST_MAX),
            prev = [], run = none, runs = case Run of none -> Runs; _ -> [Run | Runs] end, valid = none}.

%% A run First..First+K-1 of one source that starts exactly at its contiguous prefix, with
%% nothing seen beyond it, extends the prefix in one step; any other run goes record by record.
flush_run(none) -> ok;
flush_run({Source, First, K}) ->
    case ets:lookup(?T, {seq, Source}) of
        [{_, {Recv, Uniq, Dup, Reord, First, Max}}] when Max < First ->
            ets:insert(?T, {{seq, Source}, {Recv + K, Uniq + K, Dup, Reord, First + K, First + K - 1}});
        [] when First =:= 0 ->
            ets:insert(?T, {{seq, Source}, {K, K, 0, 0, K, K - 1}});
        _ ->
            lists:foreach(fun(Seq) -> track(Source, Seq) end, lists:seq(First, First + K - 1))
    end.

flush_batch(#batch{n = N, metrics = M, alerts = A, last = L, nlast = NL, runs = Runs,
                   no_seq = NoSeq, invalid = Invalid}) ->
    lists:foreach(fun(Reason) -> invalid(acked, Reason) end, lists:reverse(Invalid)),
    N > 0 andalso add(received, N),
    N > 0 andalso add({mode, acked}, N),
    M > 0 andalso add({type, metric}, M),
    A > 0 andalso add({type, alert}, A),
    NL > 0 andalso remember_all(lists:reverse(L), NL),
    maps:foreach(fun(Source, K) -> add({no_seq, Source}, K) end, NoSeq),
    lists:foreach(fun flush_run/1, lists:reverse(Runs)).

%% remember/1 for each of Recs (oldest first; K of them, at most ?LAST_MAX), in two table operations.
remember_all(Recs, K) ->
    Last = add(last_n, K),
    ets:insert(?T, remember_rows(Recs, Last - K + 1)).

remember_rows([], _) -> [];
remember_rows([R | Rest], N) -> [{{last, N rem ?LAST_MAX}, N, R} | remember_rows(Rest, N + 1)].

add(Key, K) -> ets:update_counter(?T, Key, K, {Key, 0}).

%% The acked state lives in one row per source, {{acked, SourceId}, NextSeq}, so that a batch
%% reads and writes only its own source's.
acked_next(SourceId) ->
    case ets:lookup(?T, {acked, SourceId}) of [{_, N}] -> N; [] -> 0 end.

%% @doc The whole acked state, SourceId => NextSeq (pharos_acked:state()).
acked_state() ->
    maps:from_list([{Source, N} || {{acked, Source}, N} <- ets:tab2list(?T)]).

%% @doc Replace the whole acked state, and persist it.
set_acked_state(S) ->
    ets:match_delete(?T, {{acked, '_'}, '_'}),
    ets:insert(?T, [{{acked, Source}, N} || {Source, N} <- maps:to_list(S)]),
    save().

get_delay(Default) ->
    bump(brain_starts),
    case ets:lookup(?T, delay) of [{_, D}] -> D; [] -> Default end.
set_delay(D) -> ets:insert(?T, {delay, D}).

brain_starts() -> case ets:lookup(?T, brain_starts) of [{_, N}] -> N; [] -> 0 end.

reset() ->
    Keep = [E || {K, _} = E <- ets:tab2list(?T), lists:member(K, [state_dir, delay, brain_starts])],
    ets:delete_all_objects(?T),
    ets:delete_all_objects(?AHEAD),
    ets:insert(?T, Keep),
    save(),
    ok.

%% @doc All statistics as a map (the control port prints it as JSON).
stats() -> gen_server:call(?MODULE, stats, infinity).

%% Read in this process, between two acked batches: a batch's counts and its NextSeq are applied
%% together by handle_call/3, and a reader elsewhere could see one without the other (a table
%% traversal is no snapshot), e.g. a source's NextSeq at 1000 with its seq counts at 758.
stats_now() ->
    Rows = ets:tab2list(?T),
    Get = fun(K) -> proplists:get_value(K, Rows, 0) end,
    Sources = maps:from_list(
                [{S, #{received => R, unique => U, duplicates => D, reorders => Re, next => N,
                       max_seq => M, missing => M + 1 - U}}
                 || {{seq, S}, {R, U, D, Re, N, M}} <- Rows]),
    NoSeq = maps:from_list([{S, N} || {{no_seq, S}, N} <- Rows]),
    #{received => Get(received),
      metrics => Get({type, metric}),
      alerts => Get({type, alert}),
      invalid => Get(invalid),
      modes => maps:from_list([{M, N} || {{mode, M}, N} <- Rows]),
      invalid_modes => maps:from_list([{M, N} || {{invalid_mode, M}, N} <- Rows]),
      invalid_reasons => maps:from_list([{reason_key(R), N} || {{invalid_reason, R}, N} <- Rows]),
      sources => Sources,
      no_seq => NoSeq,
      acked => case pharos_brain_cluster:store() of
                   local -> maps:from_list([{Source, N} || {{acked, Source}, N} <- Rows]);
                   mnesia -> pharos_acked_mnesia:all()
               end,
      brain_starts => Get(brain_starts),
      delay_ms => proplists:get_value(delay, Rows, 0)}.

reason_key({bad, Field}) -> iolist_to_binary(["bad_", atom_to_list(Field)]);
reason_key(R) when is_atom(R) -> atom_to_binary(R).

state_file(Dir) -> filename:join(Dir, "brain.state").

save() ->
    case ets:lookup(?T, state_dir) of
        [{_, Dir}] when Dir =/= undefined ->
            Rows = {[E || {K, _} = E <- ets:tab2list(?T), persisted(K)] ++
                    [E || {K, _, _} = E <- ets:tab2list(?T), persisted(K)],
                    ets:tab2list(?AHEAD)},
            Tmp = state_file(Dir) ++ ".tmp",
            ok = file:write_file(Tmp, term_to_binary(Rows), [raw, sync]),
            ok = file:rename(Tmp, state_file(Dir));
        _ -> ok
    end.

persisted(state_dir) -> false;
persisted(delay) -> false;
persisted(brain_starts) -> false;
persisted(_) -> true.

load(undefined) -> ok;
load(Dir) ->
    ok = filelib:ensure_dir(state_file(Dir)),
    case file:read_file(state_file(Dir)) of
        {ok, Bin} ->
            {Rows, Ahead} = binary_to_term(Bin),
            ets:insert(?T, Rows),
            ets:insert(?AHEAD, Ahead);
        {error, enoent} -> ok
    end.
