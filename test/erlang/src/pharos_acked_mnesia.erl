%% @doc The cluster store of pharos_acked: SourceId -> NextSeq in the mnesia table pharos_acked,
%% with disc_copies on every Brain node, so that whichever Brain node a sender fails over to
%% continues the deduplication where the last one left it (docs/clusters.md).
%%
%% commit/5 runs the batch's effect (Apply, which may write other mnesia tables) and the new
%% NextSeq in one mnesia:sync_transaction: it returns once every running replica has committed
%% both, so a Brain node killed right after it sent the ack has left them on the others. The
%% NextSeq is read with a write lock: two Brain nodes committing batches of one SourceId at once
%% (an old owner still working through its mailbox after the sender moved on) are serialised, and
%% the second finds the first's NextSeq and is told stale (pharos_acked then drops what the first
%% processed). Apply may run more than once (mnesia restarts a transaction that lost a lock): it
%% must do nothing but mnesia operations.
%%
%% create_table/1 makes the table; the Brain nodes must share a mnesia schema (see
%% pharos_brain_cluster for one way to start them).
-module(pharos_acked_mnesia).
-behaviour(pharos_acked).
-export([init/1, next_seq/2, commit/5, create_table/1, table/0, all/0]).

-define(TAB, pharos_acked).

table() -> ?TAB.

%% @doc Creates the table with disc_copies on Nodes (already there: ok).
create_table(Nodes) ->
    case mnesia:create_table(?TAB, [{disc_copies, Nodes}, {attributes, [source_id, next_seq]}]) of
        {atomic, ok} -> ok;
        {aborted, {already_exists, ?TAB}} -> ok;
        {aborted, Reason} -> {error, Reason}
    end.

init(_) -> none.

next_seq(SourceId, _) ->
    case mnesia:dirty_read(?TAB, SourceId) of
        [{?TAB, _, N}] -> N;
        [] -> 0
    end.

commit(SourceId, Next0, Next1, Apply, S) ->
    F = fun() ->
                Cur = case mnesia:read(?TAB, SourceId, write) of
                          [{?TAB, _, N}] -> N;
                          [] -> 0
                      end,
                case Cur of
                    Next0 ->
                        R = Apply(),
                        ok = mnesia:write({?TAB, SourceId, Next1}),
                        {ok, R};
                    _ -> stale
                end
        end,
    case mnesia:sync_transaction(F) of
        {atomic, {ok, R}} -> {ok, R, S};
        {atomic, stale} -> {stale, S};
        {aborted, Reason} -> erlang:error({pharos_acked_mnesia, Reason})
    end.

%% @doc The whole table, SourceId => NextSeq.
all() ->
    maps:from_list(mnesia:dirty_select(?TAB, [{{?TAB, '$1', '$2'}, [], [{{'$1', '$2'}}]}])).
