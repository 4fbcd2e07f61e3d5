%% @doc The reference Brain as one node of a cluster (docs/clusters.md): it connects to its peers,
%% starts mnesia on them with one schema (the deduplication of pharos_acked_mnesia and the
%% per-key accounting below, disc_copies on every node), and its Brain processes join a pg group
%% that senders discover.
%%
%% Application env (pharos_brain): store (local | mnesia), peers (Brain nodes to connect to and
%% join), pg (true: start the pg scope pg_scope and join its Brain processes to pg_group), and
%% state_dir, under which mnesia keeps its files (state_dir/mnesia; required with store mnesia).
%%
%% A node starts mnesia on its disc schema when it has one (a restart: the tables come back from
%% the running nodes). A fresh node asks its peers (extra_db_nodes): when one runs mnesia it joins
%% that schema and copies the tables; when none does it is the first node and creates them. Start
%% the first node alone, then the others.
%%
%% The per-key accounting: each acked batch's valid records, by source (their key), in runs of
%% consecutive `seq` tags, are applied in the same transaction as the batch's NextSeq
%% (pharos_acked:commit_batch/5): pharos_brain_keys holds, per source, `next` (one past the last
%% seq tag, when they came in order), `received` and `order_errors` (a run that did not start
%% at `next`: a duplicate, a gap or a reorder). Over the whole cluster, a stream of n records of a
%% source numbered 0..n-1 went through exactly once and in order iff received = next = n and
%% order_errors = 0.
-module(pharos_brain_cluster).
-export([start_link/0, store/0, apply_runs/1, stats/0]).

-define(KEYS, pharos_brain_keys).

%% @doc Runs at the application's start (a supervisor child that returns ignore): the cluster
%% set-up this node's env asks for.
start_link() ->
    Peers = [P || P <- env(peers, []), P =/= node()],
    [net_kernel:connect_node(P) || P <- Peers],
    case store() of
        mnesia -> ok = start_mnesia(Peers);
        local -> ok
    end,
    ignore.

%% @doc The acked mode's store: local or mnesia.
store() ->
    case env(store, local) of
        mnesia -> mnesia;
        _ -> local
    end.

start_mnesia(Peers) ->
    Dir = case env(state_dir, undefined) of
              undefined -> erlang:error({pharos_brain, store_mnesia_needs_state_dir});
              D -> filename:join(D, "mnesia")
          end,
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    ok = application:set_env(mnesia, dir, Dir),
    Fresh = not filelib:is_regular(filename:join(Dir, "schema.DAT")),
    ok = mnesia:start(),
    case Fresh of
        true ->
            {ok, _} = mnesia:change_config(extra_db_nodes, Peers),
            case mnesia:change_table_copy_type(schema, node(), disc_copies) of
                {atomic, ok} -> ok;
                {aborted, {already_exists, schema, _, disc_copies}} -> ok
            end;
        false -> ok
    end,
    Tables = [pharos_acked_mnesia:table(), ?KEYS],
    ok = ensure_table(pharos_acked_mnesia:table(), fun pharos_acked_mnesia:create_table/1),
    ok = ensure_table(?KEYS, fun(Nodes) -> create_keys(Nodes) end),
    ok = mnesia:wait_for_tables(Tables, 60000).

ensure_table(Tab, Create) ->
    case lists:member(Tab, mnesia:system_info(tables)) of
        false -> Create([node()]);
        true ->
            case lists:member(node(), mnesia:table_info(Tab, disc_copies)) of
                true -> ok;
                false ->
                    case mnesia:add_table_copy(Tab, node(), disc_copies) of
                        {atomic, ok} -> ok;
                        {aborted, {already_exists, _, _}} -> ok;
                        {aborted, Reason} -> {error, Reason}
                    end
            end
    end.

create_keys(Nodes) ->
    case mnesia:create_table(?KEYS, [{disc_copies, Nodes}, {attributes, [source, next, received, order_errors]}]) of
        {atomic, ok} -> ok;
        {aborted, {already_exists, ?KEYS}} -> ok;
        {aborted, Reason} -> {error, Reason}
    end.

%% @doc Inside the batch's transaction: apply the runs {Source, FirstSeq, Count} (oldest first)
%% to the per-key accounting, one read and one write per source.
apply_runs(Runs) ->
    PerSource = lists:foldl(fun merge_run/2, #{}, Runs),
    maps:foreach(fun(Source, {First, Count, Last, Errors}) ->
                         {Next, Recv, Err} = case mnesia:read(?KEYS, Source, write) of
                                                 [{?KEYS, _, N, R, E}] -> {N, R, E};
                                                 [] -> {0, 0, 0}
                                             end,
                         Err1 = Err + Errors + case First of Next -> 0; _ -> 1 end,
                         ok = mnesia:write({?KEYS, Source, max(Next, Last + 1), Recv + Count, Err1})
                 end, PerSource).

%% A source's runs within one batch: {First, Count, Last, Errors}.
merge_run({Source, First, K}, Acc) ->
    case maps:find(Source, Acc) of
        error -> Acc#{Source => {First, K, First + K - 1, 0}};
        {ok, {F0, C0, Last, E}} when First =:= Last + 1 -> Acc#{Source => {F0, C0 + K, First + K - 1, E}};
        {ok, {F0, C0, Last, E}} -> Acc#{Source => {F0, C0 + K, max(Last, First + K - 1), E + 1}}
    end.

%% @doc The cluster's view: NextSeq per SourceId and the per-key accounting (mnesia; empty with
%% the local store).
stats() ->
    case store() of
        local -> #{acked => #{}, keys => #{}};
        mnesia ->
            Keys = mnesia:dirty_select(?KEYS, [{{?KEYS, '$1', '$2', '$3', '$4'}, [], [{{'$1', '$2', '$3', '$4'}}]}]),
            #{acked => pharos_acked_mnesia:all(),
              keys => maps:from_list([{S, #{next => N, received => R, order_errors => E}} || {S, N, R, E} <- Keys]),
              nodes => [atom_to_binary(N) || N <- mnesia:system_info(running_db_nodes)]}
    end.

env(Key, Default) -> application:get_env(pharos_brain, Key, Default).
