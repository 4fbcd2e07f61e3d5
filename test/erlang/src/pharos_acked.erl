%% @doc The receiving side of Pharos' acknowledged mode (docs/wire.md, "Acknowledged mode"), as a
%% library a Brain calls from its own process: no process, no registered name, no atoms created.
%%
%% Drop it into an existing Brain by adding one clause to its handle_info/2:
%%
%%   handle_info({pharos_batch, _, _, _, _} = Batch, #{acked := Acked} = State) ->
%%       case pharos_acked:handle_batch(Batch, Acked, fun my_brain:handle_payload/1) of
%%           {ok, Acked1, {ReplyTo, Ack}} -> ReplyTo ! Ack, {noreply, State#{acked := Acked1}};
%%           {error, _Reason} -> {noreply, State}
%%       end;
%%
%% State maps each SourceId to the NextSeq acknowledged so far. Keep it across restarts (a file, DETS,
%% a database) and save it before sending the ack, or a restarted Brain will process a resend twice.
%%
%% Stores. The deduplication state (SourceId -> NextSeq) lives in a store, a module of this
%% behaviour (next_seq/2, commit/5). The map above is the local store (pharos_acked_local), for a
%% Brain that runs alone. A Brain that runs on several nodes, with senders that fail over between
%% them, needs a store every node sees: pharos_acked_mnesia keeps it in a mnesia table with
%% disc_copies on the Brain nodes (docs/clusters.md). With a store, process a batch with
%% commit_batch/5: Fold sums up the new payloads (it may run more than once: keep it free of
%% effects), Apply(Acc) records the batch's effect inside the store's commit, together with the new
%% NextSeq, before the ack is returned:
%%
%%   Store = pharos_acked:new(pharos_acked_mnesia, #{}),
%%   ...
%%   case pharos_acked:commit_batch(Batch, Store, fun fold/2, Acc0, fun apply/1) of
%%       {ok, Store1, {ReplyTo, Ack}, _Result} -> ReplyTo ! Ack, ...;
%%       {error, _Reason} -> ...
%%   end
%%
%% What a Brain gets: exactly once when everything its processing changes is written by Apply in
%% the store's transaction (the reference Brain's cluster mode does so); at least once when its
%% processing has effects outside the store (a message sent, a file written): a batch whose commit
%% failed or was not acknowledged is processed again.
%%
%% Throughput (measured with the reference Brain, README "Throughput"): decoding a batch of 1,000
%% records makes about 400 KB of short-lived terms. Start the receiving process with a young heap of
%% that order, e.g. {spawn_opt, [{min_heap_size, 100000}]} (words), so it does not collect several
%% times per batch; stay below 128 Ki words, above which every collection moves to a dirty
%% scheduler (msacc showed it; a 1M-record send took 1.31 s against 0.97-0.99 s). Account for a
%% batch at once (fold_batch/4) rather than per record where you can.
-module(pharos_acked).
-export([new/0, new/2, handle_batch/3, fold_batch/4, next_seq/2, commit_batch/5]).
-export_type([state/0, store/0]).

-type state() :: #{binary() => non_neg_integer()}.
-opaque store() :: {pharos_acked_store, module(), term()}.

%% The store behaviour. next_seq/2 may read a value that is already behind (commit/5 checks
%% again); commit/5 must, atomically, compare the stored NextSeq of SourceId with Next0 and, when
%% they are equal, run Apply() and store Next1 (both or neither, durable before it returns).
-callback init(Args :: term()) -> Store :: term().
-callback next_seq(SourceId :: binary(), Store :: term()) -> non_neg_integer().
-callback commit(SourceId :: binary(), Next0 :: non_neg_integer(), Next1 :: non_neg_integer(),
                 Apply :: fun(() -> R), Store :: term()) ->
    {ok, R, Store1 :: term()} | {stale, Store1 :: term()}.

-spec new() -> state().
new() -> #{}.

%% @doc A store of Module (a pharos_acked behaviour), initialised with Args.
-spec new(module(), term()) -> store().
new(Module, Args) -> {pharos_acked_store, Module, Module:init(Args)}.

%% @doc The NextSeq acknowledged for SourceId (0 when unknown).
-spec next_seq(binary(), state() | store()) -> non_neg_integer().
next_seq(SourceId, {pharos_acked_store, Mod, S}) -> Mod:next_seq(SourceId, S);
next_seq(SourceId, State) -> maps:get(SourceId, State, 0).

%% @doc Process one batch: Fun is called, in order, with each payload binary whose sequence number
%% is at or above the NextSeq already acknowledged for the batch's SourceId; lower ones are
%% duplicates of a resend and are dropped. A batch that starts beyond NextSeq (records missing in
%% between) is not processed: the reply acknowledges the old NextSeq so the sender resends from
%% there. Returns the new state and the ack to send to ReplyTo.
-spec handle_batch(tuple(), state(), fun((binary()) -> term())) ->
          {ok, state(), {pid(), {pharos_ack, binary(), non_neg_integer()}}} | {error, term()}.
handle_batch(Batch, State, Fun) ->
    case fold_batch(Batch, State, fun(P, Acc) -> Fun(P), Acc end, nil) of
        {ok, State1, Ack, nil} -> {ok, State1, Ack};
        {error, _} = E -> E
    end.

%% @doc handle_batch/3 with an accumulator: Fun(Payload, Acc) -> Acc for each new payload, in
%% order, so a Brain can account for a whole batch at once.
-spec fold_batch(tuple(), state(), fun((binary(), A) -> A), A) ->
          {ok, state(), {pid(), {pharos_ack, binary(), non_neg_integer()}}, A} | {error, term()}.
fold_batch({pharos_batch, ReplyTo, SourceId, FirstSeq, Payloads}, State, Fun, Acc0)
  when is_pid(ReplyTo), is_binary(SourceId), is_integer(FirstSeq), FirstSeq >= 0, is_list(Payloads),
       is_map(State) ->
    Next = next_seq(SourceId, State),
    {Next1, Acc} = fold_new(FirstSeq, Payloads, Next, Fun, Acc0),
    {ok, State#{SourceId => Next1}, {ReplyTo, {pharos_ack, SourceId, Next1}}, Acc};
fold_batch(_, _, _, _) -> {error, bad_batch}.

%% @doc Process one batch against a store: Fold(Payload, Acc) -> Acc sums up each new payload (as
%% fold_batch/4; it runs again when the store's NextSeq moved meanwhile, so it must have no
%% effect), then Apply(Acc) runs inside the store's commit, which stores the new NextSeq with it.
%% A batch with nothing new (a resend, the probe, a gap) commits nothing. Returns the store, the
%% ack to send to ReplyTo once this returns, and Apply's result (none when nothing was committed).
-spec commit_batch(tuple(), store(), fun((binary(), A) -> A), A, fun((A) -> R)) ->
          {ok, store(), {pid(), {pharos_ack, binary(), non_neg_integer()}}, R | none} | {error, term()}.
commit_batch({pharos_batch, ReplyTo, SourceId, FirstSeq, Payloads} = Batch,
             {pharos_acked_store, Mod, S} = Store, Fold, Acc0, Apply)
  when is_pid(ReplyTo), is_binary(SourceId), is_integer(FirstSeq), FirstSeq >= 0, is_list(Payloads) ->
    Next0 = Mod:next_seq(SourceId, S),
    case fold_new(FirstSeq, Payloads, Next0, Fold, Acc0) of
        {Next0, _} ->
            {ok, Store, {ReplyTo, {pharos_ack, SourceId, Next0}}, none};
        {Next1, Acc} ->
            case Mod:commit(SourceId, Next0, Next1, fun() -> Apply(Acc) end, S) of
                {ok, R, S1} -> {ok, {pharos_acked_store, Mod, S1}, {ReplyTo, {pharos_ack, SourceId, Next1}}, R};
                {stale, S1} -> commit_batch(Batch, {pharos_acked_store, Mod, S1}, Fold, Acc0, Apply)
            end
    end;
commit_batch(_, _, _, _, _) -> {error, bad_batch}.

%% The payloads at or above Next, folded; a batch that starts beyond Next folds nothing.
fold_new(FirstSeq, _Payloads, Next, _Fun, Acc0) when FirstSeq > Next -> {Next, Acc0};
fold_new(FirstSeq, Payloads, Next, Fun, Acc0) -> process(Payloads, FirstSeq, Next, Fun, Acc0).

process([], _Seq, Next, _Fun, Acc) -> {Next, Acc};
process([_ | Rest], Seq, Next, Fun, Acc) when Seq < Next -> process(Rest, Seq + 1, Next, Fun, Acc);
process([P | Rest], Seq, _Next, Fun, Acc) -> process(Rest, Seq + 1, Seq + 1, Fun, Fun(P, Acc)).
