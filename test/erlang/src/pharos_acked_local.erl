%% @doc The local store of pharos_acked: SourceId -> NextSeq in a map held by the calling process,
%% for a Brain that runs alone (the map of pharos_acked:new/0 behind the store behaviour). It is
%% as durable as the process: persist it yourself (the reference Brain's state_dir) or a restart
%% processes a resend twice.
-module(pharos_acked_local).
-behaviour(pharos_acked).
-export([init/1, next_seq/2, commit/5]).

init(_) -> #{}.

next_seq(SourceId, S) -> maps:get(SourceId, S, 0).

commit(SourceId, Next0, Next1, Apply, S) ->
    case maps:get(SourceId, S, 0) of
        Next0 -> R = Apply(), {ok, R, S#{SourceId => Next1}};
        _ -> {stale, S}
    end.
