// Controller of the pipelined output-stationary array: which fold streams and which fold drains
// in each cycle (accelsim.sim.engines.systolic, module docstring, "pipelined" os).
//
// The GEMM C[M, N] = A[M, K] @ B[K, N] is cut into folds of ROWS x COLS outputs, column folds
// outer and row folds inner (SCALE-Sim's order); fold n accumulates in bank n mod 2 over T = K
// vectors. The rules are those of _os_pipelined in accelsim/sim/reference/pe.py, in its order
// within a cycle (the stream rule sees the drains started before this cycle):
//
//   stream n starts in cycle c when c >= S[n-1] + max(T, L[n-1]) (a column's output port drains
//            fold n-1's L results) and fold n-2, the previous user of bank n mod 2, has begun
//            to drain (before c).
//   drain  n starts in cycle c when fold n's last MAC at PE (ROWS-1, 0) is over (fold_end was
//            seen in an earlier cycle) and the output port is free, c >= DS[n-1] + L[n-1].
//
// L[n] is the rows of fold n that hold data: ROWS, or M - m0 in the last row fold; they are the
// bottom L rows of the array (the top level feeds them), next to the port.
// A drain is L steps d = 0..L-1 in column 0 (column j j cycles later): step d sends the
// bottom row's result out of the port and moves the rows below d down by one.
// Tokens are issued in the cycle the rule fires (Mealy outputs): the stream token for row 0 and
// column 0, the drain token for column 0; the top level skews them. cyc is 0 in the first cycle
// after start, the cycle fold 0 starts streaming.
module os_ctrl #(
    parameter ROWS  = 4,
    parameter COLS  = 4,
    parameter IDX_W = 16,
    parameter CYC_W = 32
) (
    input  wire             clk,
    input  wire             rst,
    // T = K, Sr = M, Sc = N of the GEMM (at least 1 each), held while running
    input  wire [IDX_W-1:0] t_len,
    input  wire [IDX_W-1:0] sr_len,
    input  wire [IDX_W-1:0] sc_len,
    input  wire             start,
    input  wire             finish,     // the last result has left the last column
    input  wire             fold_end,   // a fold's last MAC at PE (ROWS-1, 0) is in this cycle
    output reg              running,
    output reg  [CYC_W-1:0] cyc,
    // stream token of row 0 / column 0: vector st_tau of the fold at (st_m0, st_n0)
    output wire             st_valid,
    output wire             st_bank,
    output wire             st_first,   // st_tau == 0
    output wire             st_lastvec, // st_tau == T - 1
    output wire [IDX_W-1:0] st_tau,
    output wire [IDX_W-1:0] st_m0,
    output wire [IDX_W-1:0] st_n0,
    // drain token of column 0: step dr_step of the fold at (dr_m0, dr_n0)
    output wire             dr_valid,
    output wire             dr_bank,
    output wire             dr_last,    // the GEMM's last fold
    output wire [IDX_W-1:0] dr_step,
    output wire [IDX_W-1:0] dr_m0,
    output wire [IDX_W-1:0] dr_n0
);
    localparam [IDX_W-1:0] R_IDX = ROWS[IDX_W-1:0];
    localparam [IDX_W-1:0] C_IDX = COLS[IDX_W-1:0];
    wire [CYC_W-1:0] t_cyc = {{(CYC_W - IDX_W){1'b0}}, t_len};
    reg  [CYC_W-1:0] s_len_last;            // L of the latest stream
    reg  [CYC_W-1:0] ds_len_last;           // L of the latest drain
    reg  [IDX_W-1:0] drc_len;               // L of the draining fold
    // a fold may start max(T, L) cycles after the previous one
    wire [CYC_W-1:0] interval = (t_cyc > s_len_last) ? t_cyc : s_len_last;

    // ---- stream side: fold next_stream is the next to stream, at (stn_m0, stn_n0)
    reg [CYC_W-1:0] next_stream;
    reg [IDX_W-1:0] stn_m0, stn_n0;
    reg             st_all;
    reg             st_busy;
    reg [IDX_W-1:0] st_tau_r, stc_m0, stc_n0;
    reg             stc_bank;
    reg [CYC_W-1:0] s_last;                 // S of the latest stream

    // ---- drain side
    reg [CYC_W-1:0] ended;                  // folds whose last MAC at PE (ROWS-1, 0) is over
    reg [CYC_W-1:0] next_drain;
    reg [IDX_W-1:0] drn_m0, drn_n0;
    reg             dr_busy;
    reg [IDX_W-1:0] dr_step_r, drc_m0, drc_n0;
    reg             drc_bank, drc_last;
    reg [CYC_W-1:0] ds_last;                // DS of the latest drain

    wire stn_lastrow = stn_m0 + R_IDX >= sr_len;
    wire stn_last    = stn_lastrow && (stn_n0 + C_IDX >= sc_len);
    wire drn_lastrow = drn_m0 + R_IDX >= sr_len;
    wire drn_last    = drn_lastrow && (drn_n0 + C_IDX >= sc_len);
    wire [IDX_W-1:0] stn_len = stn_lastrow ? sr_len - stn_m0 : R_IDX;
    wire [IDX_W-1:0] drn_len = drn_lastrow ? sr_len - drn_m0 : R_IDX;

    // ---- the start rules (pe.py _os_pipelined)
    wire stream_go = running && !st_all
                  && ((next_stream == 0) || (cyc >= s_last + interval))
                  && ((next_stream < 2) || (next_drain > next_stream - 2));
    wire drain_go  = running && (next_drain < ended)
                  && ((next_drain == 0) || (cyc >= ds_last + ds_len_last));

    // ---- tokens issued in this cycle
    assign st_valid   = st_busy || stream_go;
    assign st_bank    = st_busy ? stc_bank : next_stream[0];
    assign st_tau     = st_busy ? st_tau_r : {IDX_W{1'b0}};
    assign st_m0      = st_busy ? stc_m0 : stn_m0;
    assign st_n0      = st_busy ? stc_n0 : stn_n0;
    assign st_first   = st_tau == 0;
    assign st_lastvec = st_tau == t_len - 1;

    assign dr_valid = dr_busy || drain_go;
    assign dr_bank  = dr_busy ? drc_bank : next_drain[0];
    assign dr_step  = dr_busy ? dr_step_r : {IDX_W{1'b0}};
    assign dr_m0    = dr_busy ? drc_m0 : drn_m0;
    assign dr_n0    = dr_busy ? drc_n0 : drn_n0;
    assign dr_last  = dr_busy ? drc_last : drn_last;

    always @(posedge clk) begin
        if (rst) begin
            running <= 1'b0;
            st_busy <= 1'b0;
            dr_busy <= 1'b0;
        end else if (start) begin
            running <= 1'b1;
            cyc <= {CYC_W{1'b0}};
            next_stream <= {CYC_W{1'b0}};
            stn_m0 <= {IDX_W{1'b0}};
            stn_n0 <= {IDX_W{1'b0}};
            st_all <= 1'b0;
            st_busy <= 1'b0;
            ended <= {CYC_W{1'b0}};
            next_drain <= {CYC_W{1'b0}};
            drn_m0 <= {IDX_W{1'b0}};
            drn_n0 <= {IDX_W{1'b0}};
            dr_busy <= 1'b0;
        end else if (running) begin
            running <= !finish;
            cyc <= cyc + 1;
            if (fold_end) ended <= ended + 1;

            if (stream_go) begin
                s_last <= cyc;
                s_len_last <= {{(CYC_W - IDX_W){1'b0}}, stn_len};
                next_stream <= next_stream + 1;
                stn_m0 <= stn_lastrow ? {IDX_W{1'b0}} : stn_m0 + R_IDX;
                stn_n0 <= stn_lastrow ? stn_n0 + C_IDX : stn_n0;
                st_all <= stn_last;
                st_busy <= t_len > 1;
                st_tau_r <= 1;
                stc_bank <= next_stream[0];
                stc_m0 <= stn_m0;
                stc_n0 <= stn_n0;
            end else if (st_busy) begin
                st_busy <= st_tau_r != t_len - 1;
                st_tau_r <= st_tau_r + 1;
            end

            if (drain_go) begin
                ds_last <= cyc;
                ds_len_last <= {{(CYC_W - IDX_W){1'b0}}, drn_len};
                drc_len <= drn_len;
                next_drain <= next_drain + 1;
                drn_m0 <= drn_lastrow ? {IDX_W{1'b0}} : drn_m0 + R_IDX;
                drn_n0 <= drn_lastrow ? drn_n0 + C_IDX : drn_n0;
                dr_busy <= drn_len > 1;
                dr_step_r <= 1;
                drc_bank <= next_drain[0];
                drc_m0 <= drn_m0;
                drc_n0 <= drn_n0;
                drc_last <= drn_last;
            end else if (dr_busy) begin
                dr_busy <= dr_step_r != drc_len - 1;
                dr_step_r <= dr_step_r + 1;
            end
        end
    end
endmodule
