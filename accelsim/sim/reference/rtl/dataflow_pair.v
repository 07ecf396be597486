// A streaming stage pair as SPEC_dataflow_stage.md defines it: a CIP x COP matmul stage, a FIFO of depth D with
// credit back-pressure, and a three-pass LayerNorm stage. Both stages are in-order II=1 pipelines that issue at
// most one loop iteration per cycle. The data path is simplified (the matmul sums its input beats over ci, the
// LayerNorm keeps a row sum); the timing is real: loop counters, credits, a pointer FIFO and delay lines.
//
// Every size is a run-time input (up to the MAX_* parameters), so one build serves every parameter set.
// A pulse on `start` begins a run: the cycle after the edge that samples it is cycle 0, the first cycle the
// matmul may issue. The pair runs `frames` frames back to back and records the cycle the LayerNorm writes the
// first output beat and each frame's last output beat; `done` rises once the last frame's last beat is written.
module dataflow_pair #(
    parameter integer MAX_L = 8,  // longest pipeline depth (lm, ln)
    parameter integer MAX_D = 16,  // deepest FIFO
    parameter integer MAX_F = 8,  // most frames recorded
    parameter integer IDX_W = 12,
    parameter integer DATA_W = 16,
    parameter integer CYC_W = 32
) (
    input wire clk,
    input wire rst,
    input wire start,
    input wire [IDX_W-1:0] tt,  // rows, T / TP
    input wire [IDX_W-1:0] cit,  // matmul input-channel steps, CIN / CIP
    input wire [IDX_W-1:0] cot,  // matmul output-channel steps, COUT / COP (the LayerNorm's CT)
    input wire [$clog2(MAX_L+1)-1:0] lm,  // matmul depth, 1..MAX_L: issue at c, FIFO write at c + lm
    input wire [$clog2(MAX_L+1)-1:0] ln,  // LayerNorm depth, 1..MAX_L: issue at c, output at c + ln
    input wire [$clog2(MAX_D+1)-1:0] depth,  // FIFO depth, 1..MAX_D
    input wire [$clog2(MAX_F+1)-1:0] frames,  // 1..MAX_F
    output reg busy,
    output reg done,
    output reg [CYC_W-1:0] first_out,
    output reg [CYC_W-1:0] m_stalls,  // cycles the matmul had work but no credit
    output reg [CYC_W-1:0] n_stalls,  // cycles the LayerNorm had work but no readable beat
    output reg [$clog2(MAX_D+1)-1:0] max_occupancy,
    output reg overflow,  // a write met a full FIFO: the credits failed (never, if the design is right)
    input wire [$clog2(MAX_F)-1:0] lo_raddr,
    output wire [CYC_W-1:0] lo_rdata  // cycle of frame lo_raddr's last output beat
);
    localparam integer DW = $clog2(MAX_D + 1);  // counts 0..MAX_D
    localparam integer PW = $clog2(MAX_D);  // FIFO pointers 0..MAX_D-1 (MAX_D >= 2)
    localparam integer FW = $clog2(MAX_F + 1);
    localparam integer OW = $clog2(MAX_F);  // frame index of a recorded output (MAX_F >= 2)

    reg [CYC_W-1:0] cyc;
    reg [CYC_W-1:0] last_out[0:MAX_F-1];
    assign lo_rdata = last_out[lo_raddr];

    // ---- matmul: for f: for t: for co: for ci ----
    reg m_run;
    reg [IDX_W-1:0] m_ci, m_co, m_t;
    reg [FW-1:0] m_f;
    reg [DATA_W-1:0] m_acc, src;  // src: the always-ready source's next beat
    reg [DW-1:0] credits_used;  // beats issued (in flight or in the FIFO) minus beats read: at most depth
    wire m_produces = m_ci == cit - 1'b1;
    wire m_issue = m_run && (!m_produces || credits_used < depth);
    // iterations with co > 0 reuse the row buffered at co == 0: only co == 0 takes a source beat
    wire [DATA_W-1:0] m_sum = (m_ci == 0 ? {DATA_W{1'b0}} : m_acc) + src;
    reg [MAX_L-1:0] m_pipe_v;  // bit k: a beat issued k + 1 cycles ago
    reg [DATA_W-1:0] m_pipe_d[0:MAX_L-1];
    wire fifo_we = m_pipe_v[lm-1];
    wire [DATA_W-1:0] fifo_wd = m_pipe_d[lm-1];

    // ---- FIFO: registered, no bypass (a write at c is readable at c + 1, a read at c frees a slot at c + 1) ----
    reg [DATA_W-1:0] fifo_mem[0:MAX_D-1];
    reg [PW-1:0] wp, rp;
    reg [DW-1:0] count;
    wire [DW-1:0] last_slot = depth - 1'b1;
    wire fifo_re;
    wire [DATA_W-1:0] fifo_rd = fifo_mem[rp];

    // ---- LayerNorm: for f: for t: for pass in 0..2: for c ----
    reg n_run;
    reg [IDX_W-1:0] n_c, n_t;
    reg [1:0] n_pass;
    reg [FW-1:0] n_f;
    reg [DATA_W-1:0] n_sum;
    wire n_issue = n_run && (n_pass != 2'd0 || count != 0);
    assign fifo_re = n_issue && n_pass == 2'd0;
    wire n_frame_last = n_pass == 2'd2 && n_c == cot - 1'b1 && n_t == tt - 1'b1;
    reg [MAX_L-1:0] n_pipe_v, n_pipe_last;
    wire out_we = n_pipe_v[ln-1];
    wire out_last = n_pipe_last[ln-1];
    reg [FW-1:0] o_f;
    reg first_seen;

    integer k;
    always @(posedge clk) begin
        if (rst) begin
            busy <= 1'b0;
            done <= 1'b0;
            m_run <= 1'b0;
            n_run <= 1'b0;
            m_pipe_v <= 0;
            n_pipe_v <= 0;
            n_pipe_last <= 0;
            overflow <= 1'b0;
        end else if (start) begin
            busy <= 1'b1;
            done <= 1'b0;
            cyc <= 0;
            m_run <= 1'b1;
            n_run <= 1'b1;
            {m_ci, m_co, m_t, m_f, n_c, n_t, n_pass, n_f, o_f} <= 0;
            {m_acc, src, n_sum, credits_used, wp, rp, count} <= 0;
            {m_pipe_v, n_pipe_v, n_pipe_last} <= 0;
            {m_stalls, n_stalls, max_occupancy, first_seen, first_out} <= 0;
            overflow <= 1'b0;
        end else if (busy) begin
            cyc <= cyc + 1'b1;
            if (count > max_occupancy) max_occupancy <= count;
            // matmul
            if (m_run && !m_issue) m_stalls <= m_stalls + 1'b1;
            m_pipe_v <= {m_pipe_v[MAX_L-2:0], m_issue && m_produces};
            for (k = MAX_L - 1; k > 0; k = k - 1) m_pipe_d[k] <= m_pipe_d[k-1];
            m_pipe_d[0] <= m_sum;
            if (m_issue) begin
                m_acc <= m_sum;
                if (m_co == 0) src <= src + 1'b1;
                if (!m_produces) m_ci <= m_ci + 1'b1;
                else begin
                    m_ci <= 0;
                    if (m_co != cot - 1'b1) m_co <= m_co + 1'b1;
                    else begin
                        m_co <= 0;
                        if (m_t != tt - 1'b1) m_t <= m_t + 1'b1;
                        else begin
                            m_t <= 0;
                            m_f <= m_f + 1'b1;
                            if (m_f == frames - 1'b1) m_run <= 1'b0;
                        end
                    end
                end
            end
            credits_used <= credits_used + {{(DW - 1) {1'b0}}, m_issue && m_produces} - {{(DW - 1) {1'b0}}, fifo_re};
            // FIFO
            if (fifo_we) begin
                if (count == depth) overflow <= 1'b1;
                fifo_mem[wp] <= fifo_wd;
                wp <= {{(DW - PW) {1'b0}}, wp} == last_slot ? 0 : wp + 1'b1;
            end
            if (fifo_re) rp <= {{(DW - PW) {1'b0}}, rp} == last_slot ? 0 : rp + 1'b1;
            count <= count + {{(DW - 1) {1'b0}}, fifo_we} - {{(DW - 1) {1'b0}}, fifo_re};
            // LayerNorm
            if (n_run && !n_issue) n_stalls <= n_stalls + 1'b1;
            n_pipe_v <= {n_pipe_v[MAX_L-2:0], n_issue && n_pass == 2'd2};
            n_pipe_last <= {n_pipe_last[MAX_L-2:0], n_issue && n_frame_last};
            if (n_issue) begin
                if (n_pass == 2'd0) n_sum <= (n_c == 0 ? {DATA_W{1'b0}} : n_sum) + fifo_rd;
                if (n_c != cot - 1'b1) n_c <= n_c + 1'b1;
                else begin
                    n_c <= 0;
                    if (n_pass != 2'd2) n_pass <= n_pass + 1'b1;
                    else begin
                        n_pass <= 0;
                        if (n_t != tt - 1'b1) n_t <= n_t + 1'b1;
                        else begin
                            n_t <= 0;
                            n_f <= n_f + 1'b1;
                            if (n_f == frames - 1'b1) n_run <= 1'b0;
                        end
                    end
                end
            end
            // outputs: the sink always accepts
            if (out_we && !first_seen) begin
                first_seen <= 1'b1;
                first_out <= cyc;
            end
            if (out_we && out_last) begin
                last_out[o_f[OW-1:0]] <= cyc;
                o_f <= o_f + 1'b1;
                if (o_f == frames - 1'b1) begin
                    busy <= 1'b0;
                    done <= 1'b1;
                end
            end
        end
    end
endmodule
