// ROWS x COLS grid of PEs: the pipelined weight-stationary array without its controller
// (accelsim.sim.engines.systolic, module docstring, "pipelined" timing, ws/is; register-level
// Python model: _ws_pipelined in accelsim/sim/reference/pe.py).
//
// Edges (flattened, lane i at [i*W +: W]):
//   left   x_edge*    row i's PS activations, already skewed: row i runs i cycles behind row 0
//   top    w_top      column j's next PC weights for its load chain, deepest row first
//          w_shift/w_latch/w_bank/w_len  column j's chain controls, column j j cycles behind
//                     column 0; on w_latch only the w_len rows that hold data latch
//   bottom psum_bottom column j's PC*PS finished dot products (the PE (ROWS-1, j) registers)
// Partial sums enter the top row as zero. mac_any: some PE does a MAC in this cycle.
//
// One PE holds two banks of stationary weights (ping-pong "shadow" registers): fold n multiplies
// by bank n mod 2 while fold n+1's weights shift down the column's load chain and latch into the
// other bank. Which bank a MAC uses is carried by the activation itself (its bank bit), so the
// switch from one fold to the next travels through the array with the data: no PE needs to know
// where the wavefront is. Per cycle the activation moves one PE right, the partial sum one PE
// down (both registered), the chain stage takes the stage above when the column shifts, and on
// the load's last shift the bank latches the value that is shifting in (the chain's next state),
// so the weights are usable from the next cycle on. A load shifts in only the rows that hold
// data; the rows below keep stale weights and meet zero activations.
//
// Packing (PC x PS products per cycle, at most two: one DSP48E2, packed_mul2): a PE holds PC
// columns of the stationary operand (lanes a) and takes PS consecutive vectors per cycle (lanes
// u), keeping PC*PS partial sums, lane a*PS + u. PC = 2 is ws with two weights per DSP (Packing
// n = 2); PS = 2 is is with two activations per DSP (the ws array run on the transposed problem).
// Packing needs DATA_W = 8 (WP486's layout).
//
// The PEs are written as one register array updated by a loop (next state in an always block,
// every register latched at the clock), not as ROWS*COLS module instances: Verilator then keeps
// one copy of a PE's code for the whole array, where instances would make it emit one per PE
// (tens of MB of C++ at 32x64). Register for register it is the same array.
module ws_array #(
    parameter ROWS   = 4,
    parameter COLS   = 4,
    parameter DATA_W = 8,
    parameter ACC_W  = 32,
    parameter IDX_W  = 16,
    parameter PC     = 1,   // packing: stationary columns per PE
    parameter PS     = 1    // packing: streamed vectors per PE
) (
    input  wire                         clk,
    input  wire                         rst,
    input  wire [ROWS*PS*DATA_W-1:0]    x_edge,
    input  wire [ROWS-1:0]              x_edge_valid,
    input  wire [ROWS-1:0]              x_edge_bank,
    input  wire [COLS*PC*DATA_W-1:0]    w_top,
    input  wire [COLS-1:0]              w_shift,
    input  wire [COLS-1:0]              w_latch,
    input  wire [COLS-1:0]              w_bank,
    input  wire [COLS*IDX_W-1:0]        w_len,
    output wire [COLS*PC*PS*ACC_W-1:0]  psum_bottom,
    output reg                          mac_any
);
    localparam XW = PS * DATA_W;    // a PE's activation register
    localparam WW = PC * DATA_W;    // a chain stage, a bank
    localparam NP = PC * PS;        // products per cycle
    localparam PW = NP * ACC_W;     // a PE's partial sums
    localparam NPE = ROWS * COLS;
    localparam PRW = NP * 2 * DATA_W;  // the products of a cycle

    // The registers, one array per register of a PE: PE (i, j)'s are entry ph*NPE + i*COLS + j.
    // The clock edge copies the next state into the other half and flips ph, so a block that
    // reads the registers at the same edge still sees this cycle's half (the copy is a loop of
    // blocking writes, which the simulator keeps rolled; a whole-array non-blocking copy it
    // expands into one statement per PE). Separate arrays keep each register a machine word.
    reg [XW-1:0] x_s  [0:2*NPE-1];   // activation, passing right
    reg          v_s  [0:2*NPE-1];   // its valid bit
    reg          bk_s [0:2*NPE-1];   // its fold's bank
    reg [PW-1:0] p_s  [0:2*NPE-1];   // partial sums, passing down
    reg [WW-1:0] c_s  [0:2*NPE-1];   // load chain stage
    reg [WW-1:0] b0_s [0:2*NPE-1];   // weight bank 0
    reg [WW-1:0] b1_s [0:2*NPE-1];   // weight bank 1
    reg          ph = 1'b0;
    // their next state
    reg [XW-1:0] x_n  [0:NPE-1];
    reg          v_n  [0:NPE-1];
    reg          bk_n [0:NPE-1];
    reg [PW-1:0] p_n  [0:NPE-1];
    reg [WW-1:0] c_n  [0:NPE-1];
    reg [WW-1:0] b0_n [0:NPE-1];
    reg [WW-1:0] b1_n [0:NPE-1];

    // ---- next state of every PE, from the registers of this cycle and the array's edges
    integer i, j, k, l;
    wire [31:0] cur = ph ? NPE : 0;   // this cycle's half
    reg [XW-1:0]          x_in;      // into PE (i, j) from the left neighbour or the row's edge
    reg                   v_in, b_in;
    reg [PW-1:0]          p_in;      // from the PE above (zero at the top row)
    reg [PW-1:0]          p_out;
    reg [WW-1:0]          w_in;      // the chain stage above (or the column's top)
    reg [WW-1:0]          w_use;     // the bank this activation's fold multiplies by
    reg [PRW-1:0]         prods;     // the exact products, lane a*PS + u
    reg [2*DATA_W-1:0]    prod;
    reg [IDX_W-1:0]       row;
    reg                   latch, any;
    always @(*) begin
        {x_in, v_in, b_in, p_in, p_out, w_in, w_use, prods, prod, row, latch, any} = '0;
        // one loop over every PE (two nested loops of at most 64 the simulator would unroll)
        k = 0;
        while (k < NPE) begin
            i = k / COLS;
            j = k % COLS;
            row = i[IDX_W-1:0];
            if (j == 0) begin
                x_in = x_edge[i*XW +: XW];
                v_in = x_edge_valid[i];
                b_in = x_edge_bank[i];
            end else begin
                x_in = x_s[cur + k-1];
                v_in = v_s[cur + k-1];
                b_in = bk_s[cur + k-1];
            end
            p_in = (i == 0) ? {PW{1'b0}} : p_s[cur + k-COLS];
            w_in = (i == 0) ? w_top[j*WW +: WW] : c_s[cur + k-COLS];
            w_use = b_in ? b1_s[cur + k] : b0_s[cur + k];
            if (NP == 1)      prods = PRW'($signed(x_in) * $signed(w_use));
            else if (PC == 2) prods = PRW'(packed_mul2::mul(16'(w_use), 8'(x_in)));
            else              prods = PRW'(packed_mul2::mul(16'(x_in), 8'(w_use)));
            p_out = p_s[cur + k];
            if (v_in)
                for (l = 0; l < NP; l = l + 1) begin
                    prod = prods[l*2*DATA_W +: 2*DATA_W];
                    p_out[l*ACC_W +: ACC_W] = p_in[l*ACC_W +: ACC_W] + {{(ACC_W - 2*DATA_W){prod[2*DATA_W-1]}}, prod};
                end
            latch = w_latch[j] && row < w_len[j*IDX_W +: IDX_W];

            x_n[k]  = x_in;
            v_n[k]  = v_in && !rst;
            bk_n[k] = b_in;
            p_n[k]  = p_out;
            c_n[k]  = w_shift[j] ? w_in : c_s[cur + k];
            b0_n[k] = (latch && !w_bank[j]) ? w_in : b0_s[cur + k];
            b1_n[k] = (latch && w_bank[j]) ? w_in : b1_s[cur + k];
            any = any || v_in;
            k = k + 1;
        end
        mac_any = any;
    end

    integer c, nx;
    /* verilator lint_off BLKSEQ */
    always @(posedge clk) begin
        nx = ph ? 0 : NPE;
        c = 0;
        while (c < NPE) begin
            x_s[nx + c]  = x_n[c];
            v_s[nx + c]  = v_n[c];
            bk_s[nx + c] = bk_n[c];
            p_s[nx + c]  = p_n[c];
            c_s[nx + c]  = c_n[c];
            b0_s[nx + c] = b0_n[c];
            b1_s[nx + c] = b1_n[c];
            c = c + 1;
        end
        ph <= !ph;
    end
    /* verilator lint_on BLKSEQ */

    genvar g;
    generate
        if (NP > 2 || (NP == 2 && DATA_W != 8)) begin : g_bad_packing
            $error("ws_array: packing is two products of 8-bit operands per DSP at most (PC=%0d PS=%0d DATA_W=%0d)",
                   PC, PS, DATA_W);
        end
        for (g = 0; g < COLS; g = g + 1) begin : g_bottom
            assign psum_bottom[g*PW +: PW] = p_s[cur + (ROWS-1)*COLS + g];
        end
    endgenerate
endmodule
